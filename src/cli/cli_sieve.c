/*
 * cli_sieve: `postern sieve test SCRIPT MESSAGE [--from ADDR] [--to ADDR]
 * [--json]` runs a Sieve script on a message and prints the actions it
 * takes, in the layout of Pigeonhole's sieve-test so that the two can be
 * compared line by line; `postern sieve check SCRIPT` checks a script's
 * syntax (exit 1 with "line N: ..." on stderr). Neither needs a
 * configuration or the store. Includes are read from the script's folder
 * (:personal) and from --global-dir DIR (:global), as NAME.sieve.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "lib/util.h"
#include "sieve/sieve.h"

static const char usage[] = "postern sieve test SCRIPT MESSAGE "
    "[--from ADDR] [--to ADDR] [--global-dir DIR] [--spam-score N] "
    "[--spam-percent N] [--virus-score N] [--now UNIXTIME] [--json] | "
    "check SCRIPT [--json]";

/* Reads a whole file (at most max bytes). */
static char *
file_read(const char *path, size_t max, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 131072;
			buf = xrealloc(buf, cap + 1);
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0 || len > max)
			break;
	}
	fclose(f);
	buf[len] = '\0';
	*len_out = len;
	return buf;
}

struct dirs {
	char *personal;
	const char *global;
};

static char *
include_load(void *ctx, enum sieve_location loc, const char *name,
    size_t *len_out)
{
	struct dirs *d = ctx;
	const char *dir = loc == SIEVE_GLOBAL ? d->global : d->personal;
	char *path, *text;

	if (dir == NULL)
		return NULL;
	path = xasprintf("%s/%s.sieve", dir, name);
	text = file_read(path, SIEVE_MAX_SCRIPT + 1, len_out);
	free(path);
	return text;
}

static struct sieve_program *
compile_file(const char *path, const char *global_dir, bool is_json)
{
	struct sieve_compile_opts opts;
	struct sieve_program *p;
	struct sieve_error err;
	struct dirs dirs;
	char *text, msg[300], *slash;
	size_t len;

	text = file_read(path, SIEVE_MAX_SCRIPT + 1, &len);
	if (text == NULL) {
		cli_fail("cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	dirs.personal = xstrdup(path);
	slash = strrchr(dirs.personal, '/');
	if (slash != NULL)
		*slash = '\0';
	else
		strcpy(dirs.personal, ".");
	dirs.global = global_dir;
	opts.ctx = &dirs;
	opts.include_load = include_load;
	p = sieve_compile(text, len, &opts, &err);
	free(text);
	free(dirs.personal);
	if (p == NULL) {
		sieve_error_format(&err, msg, sizeof(msg));
		if (is_json) {
			json_t *j = json_pack("{s:b, s:i, s:s}", "ok", 0,
			    "line", (int)err.line, "error", err.msg);

			json_dumpf(j, stdout, JSON_INDENT(2));
			printf("\n");
			json_decref(j);
		}
		fprintf(stderr, "%s: %s\n", path, msg);
	}
	return p;
}

static void
print_flags(char **flags)
{
	if (flags == NULL || flags[0] == NULL)
		return;
	printf("        + add IMAP flags:");
	for (size_t i = 0; flags[i] != NULL; i++)
		printf(" %s", flags[i]);
	printf("\n");
}

/* Prints s with control characters as '?', as sieve-test does. */
static void
print_safe(const char *s)
{
	for (; *s != '\0'; s++)
		putchar((unsigned char)*s < 0x20 ? '?' : *s);
}

/* The text layout of Pigeonhole's sieve-test (its "Performed actions"
 * and "Implicit keep" sections). */
static void
print_text(const struct sieve_result *res)
{
	printf("\nPerformed actions:\n\n");
	if (res->nactions == 0)
		printf("  (none)\n");
	for (size_t i = 0; i < res->nactions; i++) {
		const struct sieve_action *a = &res->actions[i];
		const struct sieve_vacation *v = &a->vacation;

		switch (a->type) {
		case SIEVE_ACT_KEEP:
		case SIEVE_ACT_FILEINTO:
			printf(" * store message in folder: ");
			print_safe(a->mailbox);
			printf("\n");
			if (a->is_create)
				printf("        + create mailbox if it does "
				    "not exist\n");
			if (a->is_copy)
				printf("        + preserve implicit keep\n");
			print_flags(a->flags);
			break;
		case SIEVE_ACT_REDIRECT:
			printf(" * redirect message to: <%s>\n", a->address);
			if (a->is_copy)
				printf("        + preserve implicit keep\n");
			break;
		case SIEVE_ACT_DISCARD:
			printf(" * discard\n");
			break;
		case SIEVE_ACT_TRACK_DUPLICATE:
			printf(" * track %sduplicate", a->is_dup_last ?
			    "last " : "");
			if (*a->dup_handle != '\0')
				printf(" with handle: %s", a->dup_handle);
			printf("\n");
			break;
		case SIEVE_ACT_REJECT:
		case SIEVE_ACT_EREJECT:
			printf(" * reject message with reason: ");
			print_safe(a->reason);
			printf("\n");
			break;
		case SIEVE_ACT_VACATION:
			printf(" * send vacation message:\n");
			printf("    => seconds : %llu\n",
			    (unsigned long long)v->seconds);
			if (v->subject != NULL)
				printf("    => subject : %s\n", v->subject);
			if (v->from != NULL)
				printf("    => from    : %s\n", v->from);
			printf("    => handle  : %s\n", v->handle);
			printf("\nSTART MESSAGE\n%s\nEND MESSAGE\n",
			    v->reason);
			break;
		}
	}
	printf("\nImplicit keep:\n\n");
	if (res->is_implicit_keep) {
		printf(" * store message in folder: INBOX\n");
		print_flags(res->keep_flags);
	} else {
		printf("  (none)\n");
	}
	printf("\n");
}

static json_t *
json_strings(char **v)
{
	json_t *a = json_array();

	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static void
print_json(const struct sieve_result *res)
{
	static const char *const names[] = { "keep", "fileinto", "redirect",
	    "discard", "reject", "ereject", "vacation", "track_duplicate" };
	json_t *j = json_object(), *acts = json_array(), *edits = json_array();

	for (size_t i = 0; i < res->nactions; i++) {
		const struct sieve_action *a = &res->actions[i];
		json_t *o = json_pack("{s:s, s:i}", "type", names[a->type],
		    "line", (int)a->line);

		if (a->mailbox != NULL)
			json_object_set_new(o, "mailbox",
			    json_string(a->mailbox));
		if (a->flags != NULL)
			json_object_set_new(o, "flags",
			    json_strings(a->flags));
		if (a->type == SIEVE_ACT_FILEINTO)
			json_object_set_new(o, "create",
			    json_boolean(a->is_create));
		if (a->type == SIEVE_ACT_FILEINTO ||
		    a->type == SIEVE_ACT_REDIRECT)
			json_object_set_new(o, "copy",
			    json_boolean(a->is_copy));
		if (a->address != NULL)
			json_object_set_new(o, "address",
			    json_string(a->address));
		if (a->reason != NULL)
			json_object_set_new(o, "reason",
			    json_string(a->reason));
		if (a->type == SIEVE_ACT_TRACK_DUPLICATE) {
			json_object_set_new(o, "handle",
			    json_string(a->dup_handle));
			json_object_set_new(o, "id", json_string(a->dup_id));
			json_object_set_new(o, "seconds",
			    json_integer((json_int_t)a->dup_seconds));
			json_object_set_new(o, "last",
			    json_boolean(a->is_dup_last));
		}
		if (a->type == SIEVE_ACT_VACATION) {
			const struct sieve_vacation *v = &a->vacation;

			json_object_set_new(o, "seconds",
			    json_integer((json_int_t)v->seconds));
			json_object_set_new(o, "subject", v->subject != NULL ?
			    json_string(v->subject) : json_null());
			json_object_set_new(o, "from", v->from != NULL ?
			    json_string(v->from) : json_null());
			json_object_set_new(o, "addresses",
			    json_strings(v->addresses));
			json_object_set_new(o, "handle",
			    json_string(v->handle));
			json_object_set_new(o, "mime",
			    json_boolean(v->is_mime));
			json_object_set_new(o, "reason",
			    json_string(v->reason));
		}
		json_array_append_new(acts, o);
	}
	for (size_t i = 0; i < res->nedits; i++) {
		const struct sieve_edit *e = &res->edits[i];

		json_array_append_new(edits, json_pack("{s:s, s:s, s:s?}",
		    "op", e->is_delete ? "deleteheader" : "addheader",
		    "name", e->name, "value", e->value));
	}
	json_object_set_new(j, "ok", json_boolean(res->error == NULL));
	json_object_set_new(j, "actions", acts);
	json_object_set_new(j, "implicit_keep",
	    json_boolean(res->is_implicit_keep));
	json_object_set_new(j, "keep_flags", json_strings(res->keep_flags));
	json_object_set_new(j, "edits", edits);
	if (res->error != NULL) {
		json_object_set_new(j, "error", json_string(res->error));
		json_object_set_new(j, "error_line",
		    json_integer(res->error_line));
	}
	json_object_set_new(j, "steps", json_integer(res->steps));
	json_dumpf(j, stdout, JSON_INDENT(2));
	printf("\n");
	json_decref(j);
}

static bool
parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

int
cli_sieve(int argc, char **argv)
{
	const char *pos[3] = { NULL, NULL, NULL };
	const char *global_dir = NULL;
	struct sieve_input in;
	struct sieve_result res;
	struct sieve_program *p;
	bool is_json = false;
	int npos = 0, rc;
	char *msg;
	time_t now = time(NULL);
	struct tm tm;

	if (cli_help_asked(argc, argv, usage))
		return CLI_EXIT_OK;
	memset(&in, 0, sizeof(in));
	in.env_from = "MAILER-DAEMON";
	in.env_to = "recipient@example.com";
	in.spam_percent = -1;
	in.now = (int64_t)now;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		long long v;

		if (strcmp(a, "--json") == 0) {
			is_json = true;
			continue;
		}
		if (a[0] == '-' && a[1] == '-' && i + 1 >= argc) {
			fprintf(stderr, "usage: %s\n", usage);
			return CLI_EXIT_USAGE;
		}
		if (strcmp(a, "--from") == 0) {
			in.env_from = argv[++i];
		} else if (strcmp(a, "--to") == 0) {
			in.env_to = argv[++i];
		} else if (strcmp(a, "--global-dir") == 0) {
			global_dir = argv[++i];
		} else if (strcmp(a, "--spam-score") == 0 &&
		    parse_int(argv[i + 1], 0, 10, &v)) {
			in.spam_score = (int)v;
			i++;
		} else if (strcmp(a, "--spam-percent") == 0 &&
		    parse_int(argv[i + 1], 0, 100, &v)) {
			in.spam_percent = (int)v;
			i++;
		} else if (strcmp(a, "--virus-score") == 0 &&
		    parse_int(argv[i + 1], 0, 5, &v)) {
			in.virus_score = (int)v;
			i++;
		} else if (strcmp(a, "--now") == 0 &&
		    parse_int(argv[i + 1], 0, (long long)1 << 40, &v)) {
			in.now = v;
			now = (time_t)v;
			i++;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "usage: %s\n", usage);
			return CLI_EXIT_USAGE;
		} else if (npos < 3) {
			pos[npos++] = a;
		} else {
			fprintf(stderr, "usage: %s\n", usage);
			return CLI_EXIT_USAGE;
		}
	}
	localtime_r(&now, &tm);
	in.zone_minutes = (int)(tm.tm_gmtoff / 60);
	if (npos == 2 && strcmp(pos[0], "check") == 0) {
		p = compile_file(pos[1], global_dir, is_json);
		if (p == NULL)
			return CLI_EXIT_FAIL;
		if (is_json)
			printf("{\n  \"ok\": true\n}\n");
		else
			printf("%s: ok\n", pos[1]);
		sieve_program_free(&p);
		return CLI_EXIT_OK;
	}
	if (npos != 3 || strcmp(pos[0], "test") != 0) {
		fprintf(stderr, "usage: %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	p = compile_file(pos[1], global_dir, is_json);
	if (p == NULL)
		return CLI_EXIT_FAIL;
	msg = file_read(pos[2], 64u << 20, &in.len);
	if (msg == NULL) {
		sieve_program_free(&p);
		return cli_fail("cannot read %s: %s", pos[2], strerror(errno));
	}
	in.message = msg;
	rc = sieve_run(p, &in, NULL, &res);
	if (is_json)
		print_json(&res);
	else
		print_text(&res);
	if (rc != 0)
		fprintf(stderr, "%s: line %u: error: %s; implicit keep\n",
		    pos[1], res.error_line, res.error);
	sieve_result_deinit(&res);
	sieve_program_free(&p);
	free(msg);
	return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
