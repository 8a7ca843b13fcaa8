/*
 * fuzz_dsn: the DSN parameters (RFC 3461) from MAIL and RCPT as the queue
 * reads them back (queue_dsn_param(), has_queue_notify() in
 * src/queue/queue_dsn.c), and the report built from them and from a
 * remote server's reply (queue_dsn_build(), RFC 3464).
 *
 * Input: up to seven fields separated by NUL bytes: the MAIL parameters
 * ("RET=HDRS ENVID=x"), the RCPT parameters ("NOTIFY=... ORCPT=..."),
 * the sender, the recipient, the remote reply, the remote host and the
 * original message. Missing fields are empty.
 *
 * Checked: a parameter value fits its buffer (any size, 1 byte
 * included), is NUL-terminated and holds no space; NOTIFY=NEVER asks for
 * nothing; the report is a message with CRLF line ends only, no line
 * longer than 998 octets (RFC 5322 §2.1.1), header fields and
 * delivery-status fields on one line each (no CR, LF or other control
 * character of the input reaches them), and ends with the closing
 * boundary.
 *
 * fuzz-sources: src/queue/queue_dsn.c src/queue/queue_text.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "queue/queue_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_dsn: invariant broken: %s\n", what);
		abort();
	}
}

static void
param_check(const char *params, const char *key)
{
	static const size_t lens[] = { 1, 2, 8, 128, 1024 };

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char *buf = malloc(lens[i]);
		const char *v = queue_dsn_param(params, key, buf, lens[i]);

		if (v != NULL) {
			check(v == buf, "value in the caller's buffer");
			check(memchr(buf, '\0', lens[i]) != NULL,
			    "value terminated within its buffer");
			check(strchr(buf, ' ') == NULL, "value without space");
		}
		free(buf);
	}
}

/* The report's lines, checked one by one. */
static void
report_check(const char *text, size_t len, const char *boundary)
{
	size_t i = 0;
	bool is_header = true, is_status = false;
	char close[128];

	check(strlen(text) <= len, "report terminated");
	while (i < len) {
		const char *lf = memchr(text + i, '\n', len - i);
		size_t n;

		check(lf != NULL, "report ends with a line end");
		n = (size_t)(lf - (text + i));
		check(n >= 1 && text[i + n - 1] == '\r', "LF only after CR");
		n--;
		check(memchr(text + i, '\r', n) == NULL, "no bare CR");
		check(n <= 998, "line at most 998 octets");
		if (is_header || is_status) {
			for (size_t k = 0; k < n; k++)
				check((unsigned char)text[i + k] >= 0x20 ||
				    text[i + k] == '\t',
				    "no control character in a field");
		}
		if (n == 0)
			is_header = false;
		if (n > 0 && strncmp(text + i, "Content-Type: message/delivery"
		    "-status", 38) == 0)
			is_status = true;
		if (is_status && n >= 2 && strncmp(text + i, "--", 2) == 0)
			is_status = false;
		i += n + 2;
	}
	snprintf(close, sizeof(close), "\r\n--%s--\r\n", boundary);
	check(len >= strlen(close) &&
	    strcmp(text + len - strlen(close), close) == 0,
	    "ends with the closing boundary");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1);
	const char *f[7];
	size_t nf = 0, p = 0;
	char orcpt[600], envid[128], ret[8], line[4096];
	struct queue_dsn_rcpt r;
	struct queue_dsn d;
	char *text;
	size_t len;

	memcpy(copy, data, size);
	copy[size] = '\0';
	while (nf < 7) {
		f[nf++] = copy + p;
		p += strlen(copy + p);
		if (p >= size)
			break;
		p++;
	}
	while (nf < 7)
		f[nf++] = "";

	param_check(f[0], "RET");
	param_check(f[0], "ENVID");
	param_check(f[1], "NOTIFY");
	param_check(f[1], "ORCPT");
	if (queue_dsn_param(f[1], "NOTIFY", line, sizeof(line)) != NULL &&
	    strcasecmp(line, "NEVER") == 0)
		check(!has_queue_notify(f[1], "FAILURE") &&
		    !has_queue_notify(f[1], "DELAY") &&
		    !has_queue_notify(f[1], "SUCCESS"), "NEVER is never");
	(void)has_queue_notify(f[1], "FAILURE");

	memset(&r, 0, sizeof(r));
	r.rcpt = f[3];
	r.orcpt = queue_dsn_param(f[1], "ORCPT", orcpt, sizeof(orcpt));
	r.status = "5.1.1";
	r.diagnostic = *f[4] != '\0' ? f[4] : NULL;
	r.remote_mta = *f[5] != '\0' ? "mx.example.net" : NULL;
	memset(&d, 0, sizeof(d));
	d.action = size & 1 ? QUEUE_DSN_FAILED : QUEUE_DSN_DELAYED;
	d.reporting_mta = "mail.example.org";
	d.sender = f[2];
	d.envid = queue_dsn_param(f[0], "ENVID", envid, sizeof(envid));
	d.arrival = 1700000000;
	d.now = 1700003600;
	d.rcpts = &r;
	d.nrcpts = 1;
	d.original = f[6];
	d.original_len = strlen(f[6]);
	d.is_full = queue_dsn_param(f[0], "RET", ret, sizeof(ret)) != NULL &&
	    strcasecmp(ret, "FULL") == 0;
	d.boundary = "b0undary.1700003600/mail.example.org";
	d.message_id = "<dsn.x@mail.example.org>";
	text = queue_dsn_build(&d, &len);
	report_check(text, len, d.boundary);
	free(text);
	free(copy);
	return 0;
}
