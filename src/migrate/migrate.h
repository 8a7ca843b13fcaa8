/*
 * migrate: copying an account from another IMAP or POP3 server into the
 * store (postern migrate, issue 23). A blocking client (sockets with
 * timeouts, TLS through src/net) on the caller's thread; what was copied
 * is remembered in the store's migration map (store.h), so that a run can
 * be repeated until the cut-over and copies only what changed. Several
 * migrations may run at once on one store, each on its own thread.
 *
 * The source server is untrusted: every line and literal has a limit
 * checked before memory is taken, its folder names are mapped to names
 * the store takes (never a path), and its numbers drive no allocation.
 */
#ifndef POSTERN_MIGRATE_H
#define POSTERN_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

enum migrate_proto {
	MIGRATE_IMAP,
	MIGRATE_POP3,
};

/* A parsed source URL: imaps://user@host[:port], imap://..., pop3s://,
 * pop3://. The user part may be percent-encoded ("bob%40example.com"). */
struct migrate_url {
	enum migrate_proto proto;
	bool is_implicit_tls;	/* imaps, pop3s */
	char *user;
	char *host;
	uint16_t port;
};

/* Returns 0, or -1 with err set to what is wrong with the URL. */
int migrate_url_parse(const char *url, struct migrate_url *u_out, char *err,
    size_t errlen);
void migrate_url_deinit(struct migrate_url *u);

struct migrate_options {
	const struct migrate_url *url;
	const char *password;	/* borrowed; the caller wipes it */
	const char *oauth_token;	/* XOAUTH2/OAUTHBEARER instead */
	bool is_insecure;	/* imap:// or pop3:// without STARTTLS/STLS
				 * (loopback tests) */
	bool is_insecure_tls;	/* do not verify the certificate */
	const char *ca_file;	/* trust these roots instead of the
				 * system's */
	bool is_delete;		/* delete here what the source deleted */
	uint64_t message_max;	/* largest message copied (bytes) */
	int timeout_secs;	/* each answer as a whole, each write */
	/* Progress (may be NULL): called after each message and folder. */
	void (*progress)(void *arg, const char *folder, uint64_t done,
	    uint64_t total);
	void *progress_arg;
};

/* What one source folder came to. */
struct migrate_folder_result {
	char *source;		/* the source's name, UTF-8 */
	char *target;		/* ours, or NULL when skipped */
	char *note;		/* why skipped, how the name was mapped, or
				 * NULL */
	uint64_t source_messages;
	uint64_t copied;	/* new copies made */
	uint64_t bytes;		/* bytes of those */
	uint64_t rematched;	/* found again after a UIDVALIDITY change */
	uint64_t flags_updated;
	uint64_t deleted_at_source;	/* copied once, gone at the source */
	uint64_t deleted_here;	/* ... and deleted here (is_delete) */
	uint64_t mismatches;	/* size announced != bytes received */
	uint64_t failed;	/* could not be stored */
	bool is_unchanged;	/* CONDSTORE said nothing changed */
};

struct migrate_result {
	struct migrate_folder_result *folders;
	size_t nfolders;
	bool has_condstore, has_qresync;
	char error[512];	/* the failure that ended the run, or "" */
	enum migrate_fail {
		MIGRATE_OK,
		MIGRATE_FAIL_CONNECT,	/* network, TLS */
		MIGRATE_FAIL_AUTH,	/* the source refused the login */
		MIGRATE_FAIL_PROTOCOL,	/* the source broke the protocol */
		MIGRATE_FAIL_STORE,	/* our store failed */
		MIGRATE_FAIL_PARTIAL,	/* done, but some messages failed */
	} fail;
};

void migrate_result_deinit(struct migrate_result *r);

/* Copies the source account into account (id) of st. Returns 0 when every
 * folder was copied, -1 otherwise (r->fail and r->error say why; what was
 * copied stays copied and mapped). */
int migrate_run(struct store *st, int64_t account,
    const struct migrate_options *o, struct migrate_result *r);

#endif
