/*
 * cli_quickstart: `postern quickstart DOMAIN` writes a configuration that
 * works at once (every mail port, TLS with a new self-signed certificate,
 * a data directory only postern can read) and prints what a user types
 * into a mail client.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "lib/config.h"
#include "lib/util.h"
#include "net/net.h"

/* The user `make run` creates; the server drops to it when it exists. */
#define QUICKSTART_USER "postern"

struct quickstart {
	const char *domain;
	char *hostname;
	char *config_path;
	char *data_dir;
	const struct passwd *pw;	/* run-as user, NULL: none */
	bool is_root;
	bool is_forced;
};

/* Makes path absolute against the current directory. */
static char *
absolute(const char *path)
{
	char cwd[PATH_MAX];

	if (path[0] == '/')
		return xstrdup(path);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return xstrdup(path);
	return xasprintf("%s/%s", cwd, path);
}

static int
dir_make(const char *path, mode_t mode, const struct passwd *pw)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST) {
		fprintf(stderr, "postern: %s: cannot create: %s\n", path,
		    strerror(errno));
		return -1;
	}
	chmod(path, mode);
	if (pw != NULL && chown(path, pw->pw_uid, pw->pw_gid) < 0) {
		fprintf(stderr, "postern: %s: cannot give it to %s: %s\n",
		    path, pw->pw_name, strerror(errno));
		return -1;
	}
	return 0;
}

/* Creates the folder of the configuration file (/etc/postern) if needed;
 * its parents must exist. */
static int
config_dir_make(const char *config_path)
{
	char *dir = xstrdup(config_path);
	char *slash = strrchr(dir, '/');
	int rc = 0;

	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			fprintf(stderr, "postern: %s: cannot create: %s\n", dir,
			    strerror(errno));
			rc = -1;
		}
	}
	free(dir);
	return rc;
}

static int
config_write(const struct quickstart *q, const char *cert, const char *key)
{
	static const struct {
		const char *name;
		unsigned port;
		const char *proto;
		const char *tls;
	} listeners[] = {
		{ "smtp", 25, "smtp", "starttls" },
		{ "submission", 587, "submission", "starttls" },
		{ "submissions", 465, "submission", "implicit" },
		{ "imap", 143, "imap", "starttls" },
		{ "imaps", 993, "imap", "implicit" },
		{ "pop3", 110, "pop3", "starttls" },
		{ "pop3s", 995, "pop3", "implicit" },
	};
	unsigned offset = q->is_root ? 0 : 10000;
	FILE *f = fopen(q->config_path, "w");

	if (f == NULL) {
		fprintf(stderr, "postern: %s: cannot write: %s\n",
		    q->config_path, strerror(errno));
		return -1;
	}
	fprintf(f, "# postern configuration written by `postern quickstart "
	    "%s`.\n# Every key is explained in etc/postern.conf.example.\n\n"
	    "[server]\nhostname = %s\ndata_dir = %s\n", q->domain,
	    q->hostname, q->data_dir);
	if (q->pw != NULL)
		fprintf(f, "user = %s\n", q->pw->pw_name);
	fprintf(f, "log_level = info\n\n[certificate default]\n"
	    "# Self-signed: clients warn until you put a real certificate "
	    "here.\ncert = %s\nkey = %s\n", cert, key);
	for (size_t i = 0; i < sizeof(listeners) / sizeof(listeners[0]);
	    i++) {
		fprintf(f, "\n[listener %s]\naddress = 0.0.0.0\nport = %u\n"
		    "protocol = %s\ntls = %s\n", listeners[i].name,
		    listeners[i].port + offset, listeners[i].proto,
		    listeners[i].tls);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0) {
		fprintf(stderr, "postern: %s: cannot write: %s\n",
		    q->config_path, strerror(errno));
		return -1;
	}
	return 0;
}

static void
settings_print(const struct quickstart *q)
{
	unsigned o = q->is_root ? 0 : 10000;

	printf("postern is configured for %s.\n\n"
	    "  configuration   %s\n  data directory  %s\n\n"
	    "Start it with:   postern serve -c %s\n\n"
	    "Mail client settings (Outlook, Thunderbird, Apple Mail, phones):"
	    "\n  user name        the full e-mail address, e.g. you@%s\n"
	    "  incoming IMAP    %s  port %u  SSL/TLS   (or port %u STARTTLS)\n"
	    "  incoming POP3    %s  port %u  SSL/TLS   (or port %u STARTTLS)\n"
	    "  outgoing SMTP    %s  port %u  STARTTLS  (or port %u SSL/TLS),"
	    " authentication on\n"
	    "  other servers deliver to %s port %u (publish an MX record "
	    "for %s pointing to %s)\n\n"
	    "The certificate is self-signed: clients will ask you to accept "
	    "it. Replace\ncert and key in [certificate default] with a real "
	    "certificate, then run\n`kill -HUP` on the server to load it.\n",
	    q->domain, q->config_path, q->data_dir, q->config_path, q->domain,
	    q->hostname, 993 + o, 143 + o, q->hostname, 995 + o, 110 + o,
	    q->hostname, 587 + o, 465 + o, q->hostname, 25 + o, q->domain,
	    q->hostname);
}

static int
quickstart_run(struct quickstart *q)
{
	char *tls_dir = xasprintf("%s/tls", q->data_dir);
	char *cert = xasprintf("%s/cert.pem", tls_dir);
	char *key = xasprintf("%s/key.pem", tls_dir);
	const char *names[] = { q->hostname, q->domain, "localhost" };
	char err[1024];
	int rc = -1;

	if (access(q->config_path, F_OK) == 0 && !q->is_forced) {
		fprintf(stderr, "postern: %s already exists; not overwriting "
		    "it (use --force)\n", q->config_path);
		goto out;
	}
	if (config_dir_make(q->config_path) < 0 ||
	    dir_make(q->data_dir, 0700, q->pw) < 0 ||
	    dir_make(tls_dir, 0700, q->pw) < 0)
		goto out;
	if (tls_selfsigned_write(names, 3, cert, key, err, sizeof(err)) < 0) {
		fprintf(stderr, "postern: %s\n", err);
		goto out;
	}
	if (q->pw != NULL && (chown(cert, q->pw->pw_uid, q->pw->pw_gid) < 0 ||
	    chown(key, q->pw->pw_uid, q->pw->pw_gid) < 0)) {
		fprintf(stderr, "postern: %s: cannot give it to %s: %s\n",
		    key, q->pw->pw_name, strerror(errno));
		goto out;
	}
	if (config_write(q, cert, key) < 0)
		goto out;
	settings_print(q);
	rc = 0;
out:
	free(tls_dir);
	free(cert);
	free(key);
	return rc;
}

int
cli_quickstart(int argc, char **argv)
{
	static const char usage[] = "postern quickstart DOMAIN [--config FILE] "
	    "[--data-dir DIR] [--hostname HOST] [--force]";
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "hostname", required_argument, NULL, 'H' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct quickstart q = { .is_root = geteuid() == 0 };
	const char *config = NULL, *data = NULL, *host = NULL;
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:d:H:fh", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 'd': data = optarg; break;
		case 'H': host = optarg; break;
		case 'f': q.is_forced = true; break;
		case 'h':
			printf("usage: %s\n", usage);
			return CLI_EXIT_OK;
		default:
			fprintf(stderr, "usage: %s\n", usage);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || strchr(argv[optind], '.') == NULL ||
	    strchr(argv[optind], '/') != NULL) {
		fprintf(stderr, "usage: %s\n(DOMAIN is your mail domain, like "
		    "example.com)\n", usage);
		return CLI_EXIT_USAGE;
	}
	q.domain = argv[optind];
	q.hostname = host ? xstrdup(host) : xasprintf("mail.%s", q.domain);
	q.config_path = absolute(config ? config : q.is_root ?
	    CLI_DEFAULT_CONFIG : "postern.conf");
	q.data_dir = absolute(data ? data : q.is_root ? "/var/lib/postern" :
	    "postern-data");
	if (q.is_root)
		q.pw = getpwnam(QUICKSTART_USER);
	rc = quickstart_run(&q) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
	free(q.hostname);
	free(q.config_path);
	free(q.data_dir);
	return rc;
}
