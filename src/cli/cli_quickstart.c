/*
 * cli_quickstart: `postern quickstart DOMAIN` writes a configuration that
 * works at once (every mail port, TLS with a new self-signed certificate,
 * a data directory only postern can read, DOMAIN as one of ours) and
 * prints what a user types into a mail client and how to add the first
 * account. Everything inside the data directory is made as the run-as
 * user, in a child process that has become it; only the configuration
 * is written as root.
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
#include <sys/wait.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"
#include "net/net.h"
#include "store/store.h"

/* The user `make run` creates; the server drops to it when it exists. */
#define QUICKSTART_USER "postern"

struct quickstart {
	const char *domain;
	char *hostname;
	char *config_path;
	char *data_dir;
	char *user;		/* run-as user, NULL: none */
	char *self;		/* this program, for the commands we print */
	char *first;		/* the domain's first account, or NULL */
	bool has_postmaster;	/* postmaster@domain went somewhere already */
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
		const char *extra;
	} listeners[] = {
		{ "smtp", 25, "smtp", "starttls", NULL },
		{ "submission", 587, "submission", "starttls", NULL },
		{ "submissions", 465, "submission", "implicit", NULL },
		{ "imap", 143, "imap", "starttls", NULL },
		{ "imaps", 993, "imap", "implicit", NULL },
		{ "pop3", 110, "pop3", "starttls", NULL },
		{ "pop3s", 995, "pop3", "implicit", NULL },
		/* Autoconfiguration (Thunderbird, Outlook, Apple) over
		 * HTTPS; port 80 sends every client there. */
		{ "https", 443, "http", "implicit", NULL },
		{ "http", 80, "http", "none", "https_redirect = yes\n" },
		/* /metrics and /healthz, for this machine only. */
		{ "metrics", 9100, "http", "none", "metrics = yes\n" },
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
	if (q->user != NULL)
		fprintf(f, "user = %s\n", q->user);
	fprintf(f, "log_level = info\n\n[certificate default]\n"
	    "# Self-signed: clients warn until you put a real certificate "
	    "here.\ncert = %s\nkey = %s\n", cert, key);
	for (size_t i = 0; i < sizeof(listeners) / sizeof(listeners[0]);
	    i++) {
		bool is_local = listeners[i].extra != NULL &&
		    strstr(listeners[i].extra, "metrics") != NULL;

		fprintf(f, "\n[listener %s]\naddress = %s\nport = %u\n"
		    "protocol = %s\ntls = %s\n%s", listeners[i].name,
		    is_local ? "127.0.0.1" : "0.0.0.0",
		    listeners[i].port + offset, listeners[i].proto,
		    listeners[i].tls, listeners[i].extra != NULL ?
		    listeners[i].extra : "");
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
	    "Start it with:   %s serve -c %s\n\n"
	    "Mail client settings (Outlook, Thunderbird, Apple Mail, phones):"
	    "\n  user name        the full e-mail address, e.g. you@%s\n"
	    "  incoming IMAP    %s  port %u  SSL/TLS   (or port %u STARTTLS)\n"
	    "  incoming POP3    %s  port %u  SSL/TLS   (or port %u STARTTLS)\n"
	    "  outgoing SMTP    %s  port %u  STARTTLS  (or port %u SSL/TLS),"
	    " authentication on\n"
	    "  other servers deliver to %s port %u (publish an MX record "
	    "for %s pointing to %s)\n\n"
	    "Most clients need only the address and the password: "
	    "Thunderbird, Outlook and\nApple Mail find these settings at "
	    "https://%s%s/ (autoconfig, Autodiscover;\nfor an iPhone or "
	    "a Mac open https://%s%s/mobileconfig?email=you@%s).\n"
	    "Publish autoconfig.%s and autodiscover.%s as CNAMEs of %s.\n\n"
	    "The certificate is self-signed: clients will ask you to accept "
	    "it. Replace\ncert and key in [certificate default] with a real "
	    "certificate, then run\n`kill -HUP` on the server to load it.\n",
	    q->domain, q->config_path, q->data_dir, q->self, q->config_path,
	    q->domain, q->hostname, 993 + o, 143 + o, q->hostname, 995 + o,
	    110 + o, q->hostname, 587 + o, 465 + o, q->hostname, 25 + o,
	    q->domain, q->hostname, q->hostname, o ? ":10443" : "",
	    q->hostname, o ? ":10443" : "", q->domain, q->domain, q->domain,
	    q->hostname);
	/* Mail to the domain is taken from now on: say how to give it
	 * someone to go to. */
	printf("\n%s is one of this server's domains; ", q->domain);
	if (q->first != NULL) {
		if (q->has_postmaster)
			printf("postmaster@%s keeps its destination\n(RFC 5321 "
			    "§4.5.1).", q->domain);
		else
			printf("mail for postmaster@%s\ngoes to %s (RFC 5321 "
			    "§4.5.1).", q->domain, q->first);
		printf(" Add another account (it asks for the password):\n"
		    "  %s user add someone@%s -c %s\n", q->self, q->domain,
		    q->config_path);
		return;
	}
	printf("it has no accounts yet.\nAdd the first one (it asks for "
	    "the password):\n  %s user add you@%s -c %s\nthen give it the "
	    "mail for postmaster@%s (RFC 5321 §4.5.1):\n"
	    "  %s alias add postmaster@%s you@%s -c %s\n", q->self,
	    q->domain, q->config_path, q->domain, q->self, q->domain,
	    q->domain, q->config_path);
}

/* The domain's first account (the oldest), a new string, or NULL. */
static char *
first_account(struct store *st, const char *domain)
{
	struct store_account *list = NULL;
	size_t n = 0, best = 0;
	enum store_err err;
	char *address;

	if (store_account_list(st, domain, &list, &n, &err) < 0 || n == 0) {
		store_account_list_free(&list, n);
		return NULL;
	}
	for (size_t i = 1; i < n; i++) {
		if (list[i].id < list[best].id)
			best = i;
	}
	address = xstrdup(list[best].address);
	store_account_list_free(&list, n);
	return address;
}

/* In the child, as the run-as user: the certificate and the store with
 * the domain and its postmaster. Returns 0, or -1 after printing why. */
static int
data_dir_fill(const struct quickstart *q, const char *tls_dir,
    const char *cert, const char *key, char **first_out,
    bool *has_postmaster_out)
{
	const char *names[] = { q->hostname, q->domain, "localhost" };
	char err[1024], *postmaster = NULL;
	struct store *st;
	struct store_route route;
	enum store_err serr;
	int rc = -1;

	*first_out = NULL;
	*has_postmaster_out = false;
	if (chmod(q->data_dir, 0700) < 0 ||
	    (mkdir(tls_dir, 0700) < 0 && errno != EEXIST)) {
		fprintf(stderr, "postern: %s: %s\n", tls_dir, strerror(errno));
		return -1;
	}
	/* New files, not whatever a link left there points to. */
	unlink(cert);
	unlink(key);
	if (tls_selfsigned_write(names, 3, cert, key, err, sizeof(err)) < 0) {
		fprintf(stderr, "postern: %s\n", err);
		return -1;
	}
	log_configure(LOG_LEVEL_WARN, false);
	st = store_open(q->data_dir, err, sizeof(err));
	if (st == NULL) {
		fprintf(stderr, "postern: %s\n", err);
		return -1;
	}
	if (store_domain_add(st, q->domain, &serr) < 0 &&
	    serr != STORE_EXISTS) {
		fprintf(stderr, "postern: cannot add domain %s: %s\n",
		    q->domain, store_err_text(serr));
		goto out;
	}
	/* RFC 5321 §4.5.1: every domain has a postmaster. Run again over
	 * a store with accounts, the first one gets that mail, unless the
	 * address goes somewhere already. */
	*first_out = first_account(st, q->domain);
	postmaster = xasprintf("postmaster@%s", q->domain);
	if (*first_out != NULL) {
		if (store_route_resolve(st, postmaster, &route, &serr) == 0) {
			store_route_deinit(&route);
			*has_postmaster_out = true;
		} else if (serr != STORE_NOT_FOUND ||
		    store_alias_add(st, postmaster, *first_out, &serr) < 0) {
			fprintf(stderr, "postern: cannot add alias %s: %s\n",
			    postmaster, store_err_text(serr));
			goto out;
		}
	}
	rc = 0;
out:
	free(postmaster);
	store_close(&st);
	return rc;
}

/* Runs data_dir_fill() in a child that has become the run-as user (as
 * the admin commands do, cli_user_become()), so that nothing in the data
 * directory is made by root. Sets q->first. */
static int
data_dir_fill_as_user(struct quickstart *q, const char *tls_dir,
    const char *cert, const char *key)
{
	int fds[2], status = -1;
	char reply[512] = "";
	ssize_t n;
	pid_t pid;

	if (pipe(fds) < 0) {
		fprintf(stderr, "postern: pipe: %s\n", strerror(errno));
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "postern: fork: %s\n", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		char *addr = NULL, *msg;
		bool has_postmaster;
		int rc;

		close(fds[0]);
		rc = cli_user_become(q->config_path, q->user, q->data_dir);
		if (rc == 0 && q->user == NULL && mkdir(q->data_dir, 0700) < 0 &&
		    errno != EEXIST) {
			fprintf(stderr, "postern: %s: cannot create: %s\n",
			    q->data_dir, strerror(errno));
			rc = 1;
		}
		if (rc == 0 && data_dir_fill(q, tls_dir, cert, key, &addr,
		    &has_postmaster) < 0)
			rc = 1;
		/* To the parent: "+address" (postmaster@ goes there now),
		 * "=address" (it went somewhere already), or nothing. */
		if (rc == 0 && addr != NULL) {
			msg = xasprintf("%c%s", has_postmaster ? '=' : '+',
			    addr);
			if (write(fds[1], msg, strlen(msg)) < 0)
				rc = 1;
			free(msg);
		}
		free(addr);
		fflush(stdout);
		fflush(stderr);
		_exit(rc);
	}
	close(fds[1]);
	n = read(fds[0], reply, sizeof(reply) - 1);
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	if (n > 1) {
		reply[n] = '\0';
		q->has_postmaster = reply[0] == '=';
		q->first = xstrdup(reply + 1);
	}
	return 0;
}

static int
quickstart_run(struct quickstart *q)
{
	char *tls_dir = xasprintf("%s/tls", q->data_dir);
	char *cert = xasprintf("%s/cert.pem", tls_dir);
	char *key = xasprintf("%s/key.pem", tls_dir);
	int rc = -1;

	if (access(q->config_path, F_OK) == 0 && !q->is_forced) {
		fprintf(stderr, "postern: %s already exists; not overwriting "
		    "it (use --force)\n", q->config_path);
		goto out;
	}
	if (config_dir_make(q->config_path) < 0 ||
	    data_dir_fill_as_user(q, tls_dir, cert, key) < 0)
		goto out;
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
	    "[--data-dir DIR] [--hostname HOST] [--user NAME] [--force]";
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "hostname", required_argument, NULL, 'H' },
		{ "user", required_argument, NULL, 'u' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct quickstart q = { .is_root = geteuid() == 0 };
	const char *config = NULL, *data = NULL, *host = NULL, *user = NULL;
	char self[PATH_MAX];
	const struct passwd *pw;
	ssize_t n;
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:d:H:u:fh", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 'd': data = optarg; break;
		case 'H': host = optarg; break;
		case 'u': user = optarg; break;
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
	/* The server drops to this user; without --user, the one `make
	 * run` creates, when it exists. */
	if (user != NULL && !q.is_root) {
		fprintf(stderr, "postern: --user %s: only root can run the "
		    "server as another user\n", user);
		return CLI_EXIT_USAGE;
	}
	pw = q.is_root ? getpwnam(user != NULL ? user : QUICKSTART_USER) :
	    NULL;
	if (user != NULL && pw == NULL) {
		fprintf(stderr, "postern: --user %s: no such user\n", user);
		return CLI_EXIT_USAGE;
	}
	q.user = pw != NULL ? xstrdup(pw->pw_name) : NULL;
	/* serve refuses root without a user: say so now, not at start. */
	if (q.is_root && pw == NULL)
		fprintf(stderr, "postern: warning: no user '%s' here, so the "
		    "configuration names none and `postern serve` will refuse "
		    "to run as root: create it (useradd --system "
		    "--no-create-home --shell /usr/sbin/nologin %s) and run "
		    "quickstart again, or pass --user NAME\n", QUICKSTART_USER,
		    QUICKSTART_USER);
	q.domain = argv[optind];
	q.hostname = host ? xstrdup(host) : xasprintf("mail.%s", q.domain);
	q.config_path = absolute(config ? config : q.is_root ?
	    CLI_DEFAULT_CONFIG : "postern.conf");
	q.data_dir = absolute(data ? data : q.is_root ? "/var/lib/postern" :
	    "postern-data");
	/* The commands we print name this very program. */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		q.self = xstrdup(self);
	} else {
		q.self = xstrdup("postern");
	}
	rc = quickstart_run(&q) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
	free(q.user);
	free(q.self);
	free(q.first);
	free(q.hostname);
	free(q.config_path);
	free(q.data_dir);
	return rc;
}
