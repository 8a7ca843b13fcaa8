/*
 * cli: the subcommands of the postern command. Each takes the arguments
 * after its name (argv[0] is the subcommand) and returns the exit status:
 * 0 success, 1 failure at run time, 2 bad usage or a bad configuration.
 * They run on the main thread.
 */
#ifndef POSTERN_CLI_H
#define POSTERN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* Where the configuration is when -c is not given. */
#define CLI_DEFAULT_CONFIG "/etc/postern/postern.conf"

int cli_serve(int argc, char **argv);
int cli_config(int argc, char **argv);
int cli_quickstart(int argc, char **argv);
int cli_domain(int argc, char **argv);
int cli_user(int argc, char **argv);
int cli_alias(int argc, char **argv);
int cli_app_password(int argc, char **argv);
int cli_store(int argc, char **argv);
int cli_queue(int argc, char **argv);
int cli_dkim(int argc, char **argv);
int cli_dns(int argc, char **argv);
int cli_check(int argc, char **argv);
int cli_doctor(int argc, char **argv);
int cli_import(int argc, char **argv);
int cli_export(int argc, char **argv);
int cli_backup(int argc, char **argv);
int cli_restore(int argc, char **argv);
int cli_migrate(int argc, char **argv);
int cli_sieve(int argc, char **argv);

/* What every administration command shares (cli_admin.c). */
struct store;
struct cli_admin {
	const char *config_path;
	struct config *cfg;
	struct store *store;
	bool is_json;
	const char *resolver;	/* --resolver IP[:PORT] (check dkim) */
	int argc;		/* the arguments left after the options */
	char **argv;
};

/* Parses -c FILE and --json among argv (after the verb), loads the
 * configuration and opens the store. Returns 0, or the exit status to
 * return after printing why. */
int cli_admin_open(struct cli_admin *ad, int argc, char **argv,
    const char *usage);
void cli_admin_close(struct cli_admin *ad);
/* The whole of a "postern NOUN VERB ..." command: --help, usage, opening
 * the store, run(ad, verb), closing. Returns the exit status. */
int cli_admin_main(int argc, char **argv, const char *usage,
    int (*run)(struct cli_admin *ad, const char *verb));
/* Run as root with a run-as user other than root ([server] user):
 * creates data_dir when it is missing, gives it to that user as `serve`
 * does, and becomes that user for good (groups, gid, uid), as postqueue
 * and doveadm do, so that nothing under data_dir is created or opened as
 * root. Otherwise does nothing. Call it before touching data_dir. Returns
 * 0, or the exit status after printing why. */
int cli_user_become(const char *config_path, const char *user,
    const char *data_dir);
/* When argv holds -h or --help, prints usage to stdout and returns true. */
bool cli_help_asked(int argc, char **argv, const char *usage);
/* Prints "postern: " and the message to stderr; returns CLI_EXIT_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reads a new password: from the terminal (asked twice, not echoed) or
 * one line of stdin. Returns a new string (wipe it), or NULL. */
char *cli_password_read(const char *prompt);
/* Reads an existing secret once: from the terminal (not echoed) or one
 * line of stdin. Returns a new string (wipe it), or NULL after saying
 * why. */
char *cli_secret_read(const char *prompt);

/* The DKIM record of domain (one of ours, lowercase) as `postern dkim
 * show` prints it: *sel_out, the selector, and *value_out, "v=DKIM1;
 * k=rsa; p=..." (both new strings). A domain without a key gets one first
 * when is_create (as `postern dkim generate` makes it; *is_created_out
 * set). Returns 0, or -1 (no key; or after printing why it could not be
 * made). */
int cli_dkim_record(struct cli_admin *ad, const char *domain, bool is_create,
    char **sel_out, char **value_out, bool *is_created_out);

/* A server a client was told to use (cli_autoconfig.c). */
#define CLI_HOST_MAX 253
#define CLI_AUTOCONFIG_MAX 65536
struct cli_mail_server {
	int proto;		/* enum config_proto: imap, pop3, submission */
	char host[CLI_HOST_MAX + 1];
	uint16_t port;
	int tls;		/* enum config_tls */
};
/* Reads up to max servers from a Thunderbird clientConfig document, or an
 * Outlook POX Autodiscover response when is_outlook, of len bytes (at
 * most CLI_AUTOCONFIG_MAX are looked at); %EMAILDOMAIN% in a host name is
 * domain. Servers with a missing or bad host, port or TLS kind are
 * skipped. Returns how many were filled. */
size_t cli_autoconfig_parse(const char *doc, size_t len, bool is_outlook,
    const char *domain, struct cli_mail_server *out, size_t max);

/* Lines of `postern dns check` and `postern doctor`: one finding each,
 * "✓", "⚠" (recommended, or works but weak) or "✗" (must be fixed), or
 * objects appended to items (a JSON array) when it is not NULL. */
enum cli_mark { CLI_MARK_OK, CLI_MARK_WARN, CLI_MARK_FAIL };
struct json_t;
struct cli_report {
	struct json_t *items;
	int fails, warns;
};
/* name, published and expected may be NULL; text says what is wrong and
 * how to fix it, or what is right. */
void cli_report_line(struct cli_report *rep, enum cli_mark mark,
    const char *what, const char *name, const char *published,
    const char *expected, const char *text);
/* Looks up every record `postern dns DOMAIN` prints (the addresses ips,
 * borrowed, or the listeners') and reports each. Returns 0, or the exit
 * status after printing why the check could not run. */
int cli_dns_check_domain(struct cli_admin *ad, const char *domain,
    char **ips, size_t nips, struct cli_report *rep);

/* Parses "-c FILE" / "--config FILE" from argv into *path_out (borrowed
 * from argv; the default otherwise). Returns the index of the first
 * argument that is not an option, or -1 after printing a usage error. */
int cli_parse_config_option(int argc, char **argv, const char *usage,
    const char **path_out);

#endif
