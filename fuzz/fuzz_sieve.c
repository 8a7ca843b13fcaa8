/*
 * fuzz_sieve: a Sieve script, compiled and, when it compiles, run on a
 * message, as `postern sieve test` and delivery do. The input is the
 * script, then optionally a NUL byte and the message; without one, a
 * fixed message (headers with encoded words, groups, a multipart body).
 * fuzz-sources: src/sieve/sieve_parse.c src/sieve/sieve_run.c
 * fuzz-sources: src/sieve/sieve_match.c src/sieve/sieve_msg.c
 * fuzz-sources: src/mime/mime.c src/mime/mime_address.c src/mime/mime_field.c
 * fuzz-sources: src/mime/mime_imap.c src/mime/mime_scan.c src/mime/mime_str.c
 * fuzz-sources: src/mime/mime_text.c src/mime/mime_subject.c
 * fuzz-sources: src/mime/mime_thread.c
 * fuzz-packages: gmime-3.0
 *
 * Checked: compiling either gives a program or an error with a message;
 * a run ends (the step bound), within SIEVE_MAX_REDIRECTS and
 * SIEVE_MAX_ACTIONS, and a failed run holds no actions and the implicit
 * keep; every action has what its type needs.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sieve/sieve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char message[] =
    "Received: from a.example by b.example; Mon, 7 Dec 2026 11:59:58 +0000\r\n"
    "Date: Mon, 7 Dec 2026 12:34:56 +0100\r\n"
    "From: =?UTF-8?B?SsO8cmdlbg==?= <j+detail@example.org>\r\n"
    "To: team: a@example.com, \"B, b\" <b@example.com>;, c@example.net\r\n"
    "Subject: [list] =?ISO-8859-1?Q?caf=E9?= and more\r\n"
    "Message-ID: <fuzz@example.org>\r\n"
    "X-Multi: 1\r\nX-Multi: 2\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n"
    "\r\n"
    "--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n\r\nhello =C3=A9\r\n"
    "--b\r\nContent-Type: application/octet-stream\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--\r\n";

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_sieve: invariant broken: %s\n", what);
		abort();
	}
}

static bool
dup_check(void *ctx, const char *handle, const char *id, uint64_t seconds)
{
	(void)ctx;
	(void)handle;
	(void)seconds;
	return strlen(id) % 2 == 0;
}

static bool
mailbox_exists(void *ctx, const char *mailbox)
{
	(void)ctx;
	return strcmp(mailbox, "Work") == 0;
}

static char *
include_load(void *ctx, enum sieve_location loc, const char *name,
    size_t *len_out)
{
	static const char inc[] = "require \"fileinto\"; fileinto \"Inc\";";

	(void)ctx;
	(void)loc;
	if (strcmp(name, "inc") != 0)
		return NULL;
	*len_out = sizeof(inc) - 1;
	return strdup(inc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sieve_compile_opts opts = { NULL, include_load };
	struct sieve_callbacks cb = { NULL, mailbox_exists, dup_check };
	struct sieve_error err;
	struct sieve_program *p;
	struct sieve_result res;
	struct sieve_input in;
	size_t redirects = 0;
	int rc;

	const uint8_t *nul = memchr(data, '\0', size);
	size_t script_len = nul != NULL ? (size_t)(nul - data) : size;
	char *own = NULL;

	p = sieve_compile((const char *)data, script_len, &opts, &err);
	if (p == NULL) {
		check(err.msg[0] != '\0', "an error has a message");
		return 0;
	}
	check(sieve_program_size(p) <= SIEVE_MAX_PROGRAM + (1u << 20),
	    "program size bounded");
	memset(&in, 0, sizeof(in));
	in.message = message;
	in.len = sizeof(message) - 1;
	if (nul != NULL) {
		/* a copy of its own, so that a read past it is seen */
		in.len = size - script_len - 1;
		own = malloc(in.len + 1);
		memcpy(own, nul + 1, in.len);
		in.message = own;
	}
	in.env_from = "sender@example.org";
	in.env_to = "j+detail@example.org";
	in.now = 1796640000;
	in.spam_score = 5;
	in.spam_percent = 50;
	in.virus_score = 1;
	rc = sieve_run(p, &in, &cb, &res);
	check(res.nactions <= SIEVE_MAX_ACTIONS, "actions bounded");
	if (rc != 0) {
		check(res.error != NULL, "failure has a reason");
		check(res.nactions == 0 && res.is_implicit_keep,
		    "failure is the implicit keep");
	}
	for (size_t i = 0; i < res.nactions; i++) {
		const struct sieve_action *a = &res.actions[i];

		switch (a->type) {
		case SIEVE_ACT_KEEP:
		case SIEVE_ACT_FILEINTO:
			check(a->mailbox != NULL, "store has a mailbox");
			break;
		case SIEVE_ACT_REDIRECT:
			check(a->address != NULL, "redirect has an address");
			redirects++;
			break;
		case SIEVE_ACT_REJECT:
		case SIEVE_ACT_EREJECT:
			check(a->reason != NULL, "reject has a reason");
			break;
		case SIEVE_ACT_VACATION:
			check(a->vacation.reason != NULL &&
			    a->vacation.handle != NULL, "vacation complete");
			break;
		case SIEVE_ACT_TRACK_DUPLICATE:
			check(a->dup_id != NULL, "duplicate has an id");
			break;
		default:
			break;
		}
	}
	check(redirects <= SIEVE_MAX_REDIRECTS, "redirects bounded");
	sieve_result_deinit(&res);
	sieve_program_free(&p);
	free(own);
	return 0;
}
