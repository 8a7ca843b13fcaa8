/*
 * cli_admin: what the administration commands share: options, the store
 * opened from the configuration's data_dir (alongside a running server:
 * SQLite's locking lets both write, and the server reads accounts on
 * every login, so it sees a change at once) as the server's run-as user,
 * errors and password input.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <sys/stat.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"
#include "store/store.h"

#define PASSWORD_MAX 1024

int
cli_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("postern: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_EXIT_FAIL;
}

bool
cli_help_asked(int argc, char **argv, const char *usage)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			printf("usage: %s\n", usage);
			return true;
		}
	}
	return false;
}

int
cli_user_become(const char *config_path, const char *user,
    const char *data_dir)
{
	const struct passwd *pw;
	char *name;
	uid_t uid;
	gid_t gid;
	int fd, rc = CLI_EXIT_FAIL;

	if (geteuid() != 0 || user == NULL)
		return 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		fprintf(stderr, "%s: key 'user': no such user '%s'\n",
		    config_path, user);
		return CLI_EXIT_USAGE;
	}
	if (pw->pw_uid == 0)
		return 0;	/* user = root: nothing to become */
	name = xstrdup(pw->pw_name);
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	/* The data directory itself is the one thing made as root (its
	 * parent, /var/lib, is root's); opened once and changed through
	 * the descriptor. */
	if (mkdir(data_dir, 0700) < 0 && errno != EEXIST) {
		cli_fail("data_dir %s: cannot create: %s", data_dir,
		    strerror(errno));
		goto out;
	}
	fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fchown(fd, uid, gid) < 0) {
		cli_fail("data_dir %s: cannot give it to %s: %s", data_dir,
		    name, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	if (setgroups(0, NULL) < 0 || initgroups(name, gid) < 0 ||
	    setgid(gid) < 0 || setuid(uid) < 0) {
		cli_fail("cannot become user %s: %s", name, strerror(errno));
		goto out;
	}
	if (setuid(0) == 0) {
		cli_fail("still root after becoming user %s", name);
		goto out;
	}
	rc = 0;
out:
	free(name);
	return rc;
}

int
cli_admin_open(struct cli_admin *ad, int argc, char **argv,
    const char *usage)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "resolver", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *env = getenv("POSTERN_CONFIG");
	char err[1024];
	int ch, rc;

	memset(ad, 0, sizeof(*ad));
	ad->config_path = env != NULL && *env != '\0' ? env :
	    CLI_DEFAULT_CONFIG;
	optind = 1;
	/* "+": options may come anywhere, but "--" ends them. */
	while ((ch = getopt_long(argc, argv, "c:jh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			ad->config_path = optarg;
			break;
		case 'j':
			ad->is_json = true;
			break;
		case 'r':
			ad->resolver = optarg;
			break;
		case 'h':
			printf("usage: %s\n", usage);
			exit(CLI_EXIT_OK);
		default:
			fprintf(stderr, "usage: %s\n", usage);
			return CLI_EXIT_USAGE;
		}
	}
	ad->argc = argc - optind;
	ad->argv = argv + optind;
	ad->cfg = config_load(ad->config_path, err, sizeof(err));
	if (ad->cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return CLI_EXIT_USAGE;
	}
	/* The server's info lines are noise in a command's output. */
	log_configure(LOG_LEVEL_WARN, false);
	/* Every file the store makes must be the server's (issue 15,
	 * finding 14): a root-owned store.db or blobs/ stops it. */
	rc = cli_user_become(ad->config_path, ad->cfg->user,
	    ad->cfg->data_dir);
	if (rc != 0) {
		config_free(&ad->cfg);
		return rc;
	}
	ad->store = store_open(ad->cfg->data_dir, err, sizeof(err));
	if (ad->store == NULL) {
		config_free(&ad->cfg);
		return cli_fail("%s", err);
	}
	return 0;
}

void
cli_admin_close(struct cli_admin *ad)
{
	store_close(&ad->store);
	config_free(&ad->cfg);
}

int
cli_admin_main(int argc, char **argv, const char *usage,
    int (*run)(struct cli_admin *ad, const char *verb))
{
	struct cli_admin ad;
	int rc;

	if (cli_help_asked(argc, argv, usage))
		return CLI_EXIT_OK;
	if (argc < 2) {
		fprintf(stderr, "usage: %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	rc = cli_admin_open(&ad, argc - 1, argv + 1, usage);
	if (rc != 0)
		return rc;
	rc = run(&ad, argv[1]);
	cli_admin_close(&ad);
	return rc;
}

static char *
line_read(FILE *f)
{
	char *line = xmalloc(PASSWORD_MAX + 2);
	size_t n;

	if (fgets(line, PASSWORD_MAX + 2, f) == NULL) {
		free(line);
		return NULL;
	}
	n = strcspn(line, "\r\n");
	if (n > PASSWORD_MAX) {
		secret_wipe(line, PASSWORD_MAX + 2);
		free(line);
		return NULL;
	}
	line[n] = '\0';
	return line;
}

/* Reads one line from the terminal without echo. */
static char *
tty_read(FILE *tty, const char *prompt)
{
	struct termios old, quiet;
	char *line;

	fprintf(stderr, "%s", prompt);
	fflush(stderr);
	tcgetattr(fileno(tty), &old);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	line = line_read(tty);
	tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputc('\n', stderr);
	return line;
}

char *
cli_secret_read(const char *prompt)
{
	char *s = isatty(STDIN_FILENO) ? tty_read(stdin, prompt) :
	    line_read(stdin);

	if (s == NULL || s[0] == '\0') {
		free(s);
		cli_fail("no password on %s", isatty(STDIN_FILENO) ?
		    "the terminal" : "standard input");
		return NULL;
	}
	return s;
}

char *
cli_password_read(const char *prompt)
{
	char *first, *again;

	/* Passwords never come from argv (ps would show them). */
	if (!isatty(STDIN_FILENO)) {
		first = line_read(stdin);
		if (first == NULL || first[0] == '\0') {
			free(first);
			cli_fail("no password on standard input");
			return NULL;
		}
		return first;
	}
	first = tty_read(stdin, prompt);
	if (first == NULL || first[0] == '\0') {
		free(first);
		cli_fail("empty password");
		return NULL;
	}
	again = tty_read(stdin, "Again: ");
	if (again == NULL || strcmp(first, again) != 0) {
		secret_wipe(first, strlen(first));
		free(first);
		if (again != NULL)
			secret_wipe(again, strlen(again));
		free(again);
		cli_fail("the passwords differ");
		return NULL;
	}
	secret_wipe(again, strlen(again));
	free(again);
	return first;
}
