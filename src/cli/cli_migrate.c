/*
 * cli_migrate: `postern migrate`: copies accounts from another IMAP or
 * POP3 server (src/migrate), one account or many in parallel, and can be
 * run again until the cut-over: each run copies only what changed.
 *
 *   postern migrate ADDRESS --from imaps://USER@HOST[:PORT] [options]
 *   postern migrate --accounts FILE [--jobs N] [options]
 *
 * Secrets never come from the command line (ps shows it): the password is
 * read from the terminal or one line of stdin, a token from a file, and
 * the accounts file may hold passwords only when nobody else may read it.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/util.h"
#include "migrate/migrate.h"
#include "store/store.h"

static const char usage[] =
    "postern migrate ADDRESS --from imaps://USER@HOST[:PORT] [options]\n"
    "       postern migrate --accounts FILE [--jobs N] [options]\n"
    "sources: imaps:// imap:// (STARTTLS) pop3s:// pop3:// (STLS)\n"
    "options: --oauth-token-file FILE  --ca-file FILE  --insecure-tls\n"
    "         --insecure (imap:// or pop3:// without STARTTLS/STLS)\n"
    "         --delete (delete here what the source deleted)\n"
    "         --max-message BYTES  --timeout SECONDS  --json  -c FILE\n"
    "the password is read from the terminal or one line of stdin";

/* Exit status when the source refused the login. */
#define CLI_EXIT_AUTH 3
/* Longest line of the accounts file, and most accounts. */
#define ACCOUNTS_LINE_MAX 4096
#define ACCOUNTS_MAX 100000
#define JOBS_MAX 64
#define TOKEN_MAX 16384

struct job {
	char *address;
	char *url_text;
	struct migrate_url url;
	size_t line;		/* of the accounts file */
	char *password;		/* wiped after the run */
	char *token;
	struct migrate_result result;
	int rc;
	bool is_done;
};

struct run {
	struct store *store;
	struct migrate_options base;
	struct job *jobs;
	size_t njobs, next;
	bool is_progress;
	pthread_mutex_t lock;
};

static void
secret_free(char **s)
{
	if (*s != NULL) {
		secret_wipe(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

/* Reads a secret file: one line, the first; refuses a file others may
 * read. Returns a new string, or NULL after printing why. */
static char *
token_read(const char *path)
{
	struct stat sb;
	char *buf = xmalloc(TOKEN_MAX + 2);
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		cli_fail("cannot open %s: %s", path, strerror(errno));
		free(buf);
		return NULL;
	}
	if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & 077) != 0) {
		cli_fail("%s: a secret that group or others may read: chmod "
		    "600 %s", path, path);
		fclose(f);
		free(buf);
		return NULL;
	}
	n = fread(buf, 1, TOKEN_MAX + 1, f);
	fclose(f);
	if (n > TOKEN_MAX) {
		cli_fail("%s: longer than %d bytes", path, TOKEN_MAX);
		secret_wipe(buf, n);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0') {
		cli_fail("%s: empty", path);
		free(buf);
		return NULL;
	}
	return buf;
}

/* The accounts file: one account a line, "ADDRESS URL [PASSWORD]", blank
 * lines and lines starting with # ignored. The password is the rest of
 * the line after the URL (it may hold spaces); a line without one takes
 * the password read from the terminal or stdin. A file with passwords
 * must not be readable by group or others. */
static int
accounts_read(const char *path, struct job **jobs_out, size_t *n_out,
    bool *needs_password_out)
{
	char line[ACCOUNTS_LINE_MAX + 2];
	struct stat sb;
	FILE *f = fopen(path, "r");
	size_t lineno = 0, cap = 0;
	bool is_private;

	*needs_password_out = false;
	if (f == NULL)
		return cli_fail("cannot open %s: %s", path, strerror(errno));
	is_private = fstat(fileno(f), &sb) == 0 && (sb.st_mode & 077) == 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = line, *addr, *url, *pw;
		char err[512];
		struct job *j;
		size_t len = strlen(line);

		lineno++;
		if (len > ACCOUNTS_LINE_MAX) {
			fclose(f);
			return cli_fail("%s:%zu: the line is longer than %d "
			    "bytes", path, lineno, ACCOUNTS_LINE_MAX);
		}
		line[strcspn(line, "\r\n")] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		addr = p;
		p += strcspn(p, " \t");
		if (*p != '\0')
			*p++ = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		url = p;
		p += strcspn(p, " \t");
		if (*p != '\0')
			*p++ = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		pw = p;
		if (*url == '\0' || strchr(addr, '@') == NULL) {
			fclose(f);
			return cli_fail("%s:%zu: expected ADDRESS SOURCE-URL "
			    "[PASSWORD]", path, lineno);
		}
		if (*pw != '\0' && !is_private) {
			secret_wipe(line, sizeof(line));
			fclose(f);
			return cli_fail("%s:%zu: a password in a file that "
			    "group or others may read: chmod 600 %s", path,
			    lineno, path);
		}
		if (*n_out == cap) {
			if (cap >= ACCOUNTS_MAX) {
				fclose(f);
				return cli_fail("%s:%zu: more than %d accounts",
				    path, lineno, ACCOUNTS_MAX);
			}
			cap = cap ? cap * 2 : 16;
			*jobs_out = xrealloc(*jobs_out,
			    cap * sizeof(**jobs_out));
		}
		/* Two workers copying into one account make duplicates. */
		for (size_t i = 0; i < *n_out; i++)
			if (strcasecmp((*jobs_out)[i].address, addr) == 0) {
				int rc = cli_fail("%s:%zu: %s is already at "
				    "%s:%zu: one line an account", path,
				    lineno, addr, path, (*jobs_out)[i].line);

				secret_wipe(line, sizeof(line));
				fclose(f);
				return rc;
			}
		j = &(*jobs_out)[*n_out];
		memset(j, 0, sizeof(*j));
		j->line = lineno;
		if (migrate_url_parse(url, &j->url, err, sizeof(err)) < 0) {
			secret_wipe(line, sizeof(line));
			fclose(f);
			return cli_fail("%s:%zu: %s", path, lineno, err);
		}
		(*n_out)++;
		j->address = xstrdup(addr);
		j->url_text = xstrdup(url);
		if (*pw != '\0')
			j->password = xstrdup(pw);
		else
			*needs_password_out = true;
	}
	secret_wipe(line, sizeof(line));
	fclose(f);
	if (*n_out == 0)
		return cli_fail("%s: no account in it", path);
	return 0;
}

static void
progress(void *arg, const char *folder, uint64_t done, uint64_t total)
{
	struct job *j = arg;

	fprintf(stderr, "\r\033[K%s %s: %llu/%llu", j->address, folder,
	    (unsigned long long)done, (unsigned long long)total);
}

static void
job_run(struct run *run, struct job *j)
{
	struct migrate_options o = run->base;
	struct store_account a;
	enum store_err err;

	o.url = &j->url;
	o.password = j->password;
	o.oauth_token = j->token != NULL ? j->token : run->base.oauth_token;
	if (run->is_progress) {
		o.progress = progress;
		o.progress_arg = j;
	}
	if (store_account_get(run->store, j->address, &a, &err) < 0) {
		snprintf(j->result.error, sizeof(j->result.error), "no account "
		    "%s here (%s): add it first with postern user add",
		    j->address, store_err_text(err));
		j->result.fail = MIGRATE_FAIL_STORE;
		j->rc = -1;
	} else {
		j->rc = migrate_run(run->store, a.id, &o, &j->result);
		store_account_deinit(&a);
	}
	secret_free(&j->password);
	secret_free(&j->token);
	if (run->is_progress)
		fprintf(stderr, "\r\033[K");
}

static void *
worker(void *arg)
{
	struct run *run = arg;

	for (;;) {
		struct job *j;

		pthread_mutex_lock(&run->lock);
		j = run->next < run->njobs ? &run->jobs[run->next++] : NULL;
		pthread_mutex_unlock(&run->lock);
		if (j == NULL)
			return NULL;
		job_run(run, j);
	}
}

static const char *
fail_name(enum migrate_fail f)
{
	switch (f) {
	case MIGRATE_OK:
		return "ok";
	case MIGRATE_FAIL_CONNECT:
		return "connect";
	case MIGRATE_FAIL_AUTH:
		return "auth";
	case MIGRATE_FAIL_PROTOCOL:
		return "protocol";
	case MIGRATE_FAIL_STORE:
		return "store";
	case MIGRATE_FAIL_PARTIAL:
		return "partial";
	}
	return "unknown";
}

#define FOLDER_COUNTS(X)						\
	X(source_messages) X(copied) X(bytes) X(rematched)		\
	X(flags_updated) X(deleted_at_source) X(deleted_here)		\
	X(mismatches) X(failed)

static json_t *
job_json(const struct job *j)
{
	json_t *o = json_object(), *folders = json_array(),
	    *totals = json_object();
	const struct migrate_result *r = &j->result;

#define TOTAL_DECL(f) uint64_t t_##f = 0;
	FOLDER_COUNTS(TOTAL_DECL)
#undef TOTAL_DECL
	json_object_set_new(o, "address", json_string(j->address));
	json_object_set_new(o, "source", json_string(j->url_text));
	json_object_set_new(o, "ok", json_boolean(j->rc == 0));
	json_object_set_new(o, "result", json_string(fail_name(r->fail)));
	json_object_set_new(o, "error", r->error[0] ?
	    json_string(r->error) : json_null());
	json_object_set_new(o, "condstore", json_boolean(r->has_condstore));
	json_object_set_new(o, "qresync", json_boolean(r->has_qresync));
	for (size_t i = 0; i < r->nfolders; i++) {
		const struct migrate_folder_result *fr = &r->folders[i];
		json_t *f = json_object();

		json_object_set_new(f, "source", json_string(fr->source ?
		    fr->source : ""));
		json_object_set_new(f, "target", fr->target ?
		    json_string(fr->target) : json_null());
		json_object_set_new(f, "note", fr->note ?
		    json_string(fr->note) : json_null());
		json_object_set_new(f, "unchanged",
		    json_boolean(fr->is_unchanged));
#define FOLDER_SET(x) json_object_set_new(f, #x,			\
	    json_integer((json_int_t)fr->x)); t_##x += fr->x;
		FOLDER_COUNTS(FOLDER_SET)
#undef FOLDER_SET
		json_array_append_new(folders, f);
	}
#define TOTAL_SET(x) json_object_set_new(totals, #x,			\
	    json_integer((json_int_t)t_##x));
	FOLDER_COUNTS(TOTAL_SET)
#undef TOTAL_SET
	json_object_set_new(o, "folders", folders);
	json_object_set_new(o, "totals", totals);
	return o;
}

static void
job_print(const struct job *j)
{
	const struct migrate_result *r = &j->result;
	uint64_t copied = 0, bytes = 0;

	printf("%s <- %s\n", j->address, j->url_text);
	for (size_t i = 0; i < r->nfolders; i++) {
		const struct migrate_folder_result *fr = &r->folders[i];

		printf("  %s -> %s: %llu at the source, %llu copied (%llu "
		    "bytes)", fr->source, fr->target ? fr->target : "(skipped)",
		    (unsigned long long)fr->source_messages,
		    (unsigned long long)fr->copied,
		    (unsigned long long)fr->bytes);
		if (fr->rematched)
			printf(", %llu matched again",
			    (unsigned long long)fr->rematched);
		if (fr->flags_updated)
			printf(", %llu flag changes",
			    (unsigned long long)fr->flags_updated);
		if (fr->deleted_at_source)
			printf(", %llu deleted at the source (%llu here)",
			    (unsigned long long)fr->deleted_at_source,
			    (unsigned long long)fr->deleted_here);
		if (fr->mismatches)
			printf(", %llu size mismatches",
			    (unsigned long long)fr->mismatches);
		if (fr->failed)
			printf(", %llu FAILED", (unsigned long long)fr->failed);
		if (fr->note)
			printf(" (%s)", fr->note);
		printf("\n");
		copied += fr->copied;
		bytes += fr->bytes;
	}
	if (j->rc == 0)
		printf("  done: %llu messages, %llu bytes copied\n",
		    (unsigned long long)copied, (unsigned long long)bytes);
	else
		printf("  FAILED (%s): %s\n", fail_name(r->fail), r->error);
}

int
cli_migrate(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "accounts", required_argument, NULL, 'a' },
		{ "jobs", required_argument, NULL, 'J' },
		{ "oauth-token-file", required_argument, NULL, 'o' },
		{ "ca-file", required_argument, NULL, 'C' },
		{ "insecure", no_argument, NULL, 'i' },
		{ "insecure-tls", no_argument, NULL, 'I' },
		{ "delete", no_argument, NULL, 'd' },
		{ "max-message", required_argument, NULL, 'm' },
		{ "timeout", required_argument, NULL, 't' },
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *from = NULL, *accounts = NULL, *token_file = NULL;
	const char *config = NULL;
	struct run run = { 0 };
	struct cli_admin ad;
	bool is_json = false, needs_password = false;
	char *password = NULL, *token = NULL;
	long jobs = 4;
	int ch, rc = CLI_EXIT_OK;
	pthread_t threads[JOBS_MAX];

	run.base.message_max = 64u << 20;
	run.base.timeout_secs = 60;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:jh", longopts, NULL)) != -1) {
		char *end;

		switch (ch) {
		case 'f':
			from = optarg;
			break;
		case 'a':
			accounts = optarg;
			break;
		case 'J':
			jobs = strtol(optarg, &end, 10);
			if (*end != '\0' || jobs < 1 || jobs > JOBS_MAX) {
				fprintf(stderr, "postern: --jobs takes 1 to "
				    "%d\n", JOBS_MAX);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'o':
			token_file = optarg;
			break;
		case 'C':
			run.base.ca_file = optarg;
			break;
		case 'i':
			run.base.is_insecure = true;
			break;
		case 'I':
			run.base.is_insecure_tls = true;
			break;
		case 'd':
			run.base.is_delete = true;
			break;
		case 'm': {
			unsigned long long v = strtoull(optarg, &end, 10);

			if (*end != '\0' || v < 1024 || v > (1ull << 30)) {
				fprintf(stderr, "postern: --max-message takes "
				    "1024 to %llu bytes\n", 1ull << 30);
				return CLI_EXIT_USAGE;
			}
			run.base.message_max = v;
			break;
		}
		case 't':
			run.base.timeout_secs = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || run.base.timeout_secs < 1 ||
			    run.base.timeout_secs > 3600) {
				fprintf(stderr, "postern: --timeout takes 1 to "
				    "3600 seconds\n");
				return CLI_EXIT_USAGE;
			}
			break;
		case 'c':
			config = optarg;
			break;
		case 'j':
			is_json = true;
			break;
		case 'h':
			printf("usage: %s\n", usage);
			return CLI_EXIT_OK;
		default:
			fprintf(stderr, "usage: %s\n", usage);
			return CLI_EXIT_USAGE;
		}
	}
	if (accounts != NULL ? from != NULL || optind != argc :
	    from == NULL || optind + 1 != argc) {
		fprintf(stderr, "usage: %s\n", usage);
		return CLI_EXIT_USAGE;
	}

	/* Everything secret is read before the store is opened and, as
	 * root, before becoming the run-as user: the files may be root's. */
	if (accounts != NULL) {
		if (accounts_read(accounts, &run.jobs, &run.njobs,
		    &needs_password) != 0) {
			rc = CLI_EXIT_USAGE;
			goto out;
		}
	} else {
		char err[512];

		run.jobs = xcalloc(1, sizeof(*run.jobs));
		run.njobs = 1;
		run.jobs[0].address = xstrdup(argv[optind]);
		run.jobs[0].url_text = xstrdup(from);
		if (migrate_url_parse(from, &run.jobs[0].url, err,
		    sizeof(err)) < 0) {
			fprintf(stderr, "postern: %s\n", err);
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		needs_password = true;
	}
	if (token_file != NULL) {
		if ((token = token_read(token_file)) == NULL) {
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		run.base.oauth_token = token;
		needs_password = false;
	}
	if (needs_password) {
		if ((password = cli_secret_read("Source password: ")) ==
		    NULL) {
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		for (size_t i = 0; i < run.njobs; i++)
			if (run.jobs[i].password == NULL &&
			    run.jobs[i].token == NULL)
				run.jobs[i].password = xstrdup(password);
		secret_free(&password);
	}
	for (size_t i = 0; i < run.njobs; i++)
		if (run.jobs[i].password == NULL && token == NULL)
			run.jobs[i].password = xstrdup("");

	{
		char *args[5] = { "migrate" };
		int n = 1;

		if (config != NULL) {
			args[n++] = "-c";
			args[n++] = (char *)config;
		}
		args[n] = NULL;
		if ((rc = cli_admin_open(&ad, n, args, usage)) != 0)
			goto out;
	}
	run.store = ad.store;
	run.is_progress = !is_json && isatty(STDERR_FILENO);
	pthread_mutex_init(&run.lock, NULL);
	if (jobs > (long)run.njobs)
		jobs = (long)run.njobs;
	for (long i = 0; i < jobs; i++)
		if (pthread_create(&threads[i], NULL, worker, &run) != 0)
			panic("migrate: cannot start a thread");
	for (long i = 0; i < jobs; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_destroy(&run.lock);

	if (is_json) {
		json_t *out;

		if (accounts == NULL) {
			out = job_json(&run.jobs[0]);
		} else {
			json_t *list = json_array();

			out = json_object();
			for (size_t i = 0; i < run.njobs; i++)
				json_array_append_new(list,
				    job_json(&run.jobs[i]));
			json_object_set_new(out, "accounts", list);
		}
		json_dumpf(out, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		printf("\n");
		json_decref(out);
	} else {
		for (size_t i = 0; i < run.njobs; i++)
			job_print(&run.jobs[i]);
	}
	rc = CLI_EXIT_OK;
	for (size_t i = 0; i < run.njobs; i++) {
		if (run.jobs[i].rc == 0)
			continue;
		if (!is_json)
			fprintf(stderr, "postern: %s: %s\n",
			    run.jobs[i].address, run.jobs[i].result.error);
		if (run.jobs[i].result.fail == MIGRATE_FAIL_AUTH &&
		    rc == CLI_EXIT_OK)
			rc = CLI_EXIT_AUTH;
		else
			rc = CLI_EXIT_FAIL;
	}
	cli_admin_close(&ad);
out:
	secret_free(&token);
	secret_free(&password);
	for (size_t i = 0; i < run.njobs; i++) {
		struct job *j = &run.jobs[i];

		secret_free(&j->password);
		secret_free(&j->token);
		free(j->address);
		free(j->url_text);
		migrate_url_deinit(&j->url);
		migrate_result_deinit(&j->result);
	}
	free(run.jobs);
	return rc;
}
