/*
 * imap_notify: what the NOTIFY command (RFC 5465) asks for, as the parser
 * of imap_notify_parse.c reads it from a command's argument tree, for
 * imap_cmd_notify.c to act on. Pure data and one pure function, so that
 * fuzz/fuzz_imap_notify.c can run it without a session. One session's
 * worker thread.
 */
#ifndef POSTERN_IMAP_NOTIFY_H
#define POSTERN_IMAP_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "imap/imap_parser.h"

/* Event groups in one NOTIFY SET, and mailbox names in all of them. */
#define IMAP_NOTIFY_GROUPS_MAX 64
#define IMAP_NOTIFY_NAMES_MAX 1024

/* RFC 5465 §6 mailbox specifiers. */
enum imap_notify_filter {
	IMAP_NOTIFY_SELECTED,
	IMAP_NOTIFY_SELECTED_DELAYED,
	IMAP_NOTIFY_INBOXES,
	IMAP_NOTIFY_PERSONAL,
	IMAP_NOTIFY_SUBSCRIBED,
	IMAP_NOTIFY_SUBTREE,
	IMAP_NOTIFY_MAILBOXES,
};

/* RFC 5465 §5 events, as bits. */
enum imap_notify_event {
	IMAP_NOTIFY_MESSAGE_NEW = 1 << 0,
	IMAP_NOTIFY_MESSAGE_EXPUNGE = 1 << 1,
	IMAP_NOTIFY_FLAG_CHANGE = 1 << 2,
	IMAP_NOTIFY_ANNOTATION_CHANGE = 1 << 3,
	IMAP_NOTIFY_MAILBOX_NAME = 1 << 4,
	IMAP_NOTIFY_SUBSCRIPTION_CHANGE = 1 << 5,
	IMAP_NOTIFY_MAILBOX_METADATA_CHANGE = 1 << 6,
	IMAP_NOTIFY_SERVER_METADATA_CHANGE = 1 << 7,
	IMAP_NOTIFY_UNKNOWN = 1 << 8,	/* an event-ext we do not know */
};

/* The events postern reports (BADEVENT lists them, RFC 5465 §3.1). */
#define IMAP_NOTIFY_SUPPORTED \
	(IMAP_NOTIFY_MESSAGE_NEW | IMAP_NOTIFY_MESSAGE_EXPUNGE | \
	IMAP_NOTIFY_FLAG_CHANGE | IMAP_NOTIFY_MAILBOX_NAME | \
	IMAP_NOTIFY_SUBSCRIPTION_CHANGE)
#define IMAP_NOTIFY_SUPPORTED_TEXT "MessageNew MessageExpunge FlagChange " \
	"MailboxName SubscriptionChange"

/* FETCH items a MessageNew of the selected mailbox may ask for. */
enum imap_notify_fetch {
	IMAP_NOTIFY_FETCH_UID = 1 << 0,
	IMAP_NOTIFY_FETCH_FLAGS = 1 << 1,
	IMAP_NOTIFY_FETCH_MODSEQ = 1 << 2,
	IMAP_NOTIFY_FETCH_INTERNALDATE = 1 << 3,
	IMAP_NOTIFY_FETCH_SIZE = 1 << 4,	/* RFC822.SIZE */
};

struct imap_notify_group {
	enum imap_notify_filter filter;
	unsigned events;	/* enum imap_notify_event bits; 0: NONE */
	char **names;		/* SUBTREE, MAILBOXES: store names */
	size_t nnames;
};

struct imap_notify_spec {
	bool is_none;		/* NOTIFY NONE */
	bool is_status;		/* NOTIFY SET STATUS */
	struct imap_notify_group *groups;
	size_t ngroups;
	unsigned fetch;		/* enum imap_notify_fetch bits of the
				 * selected group's MessageNew */
};

/* Turns a mailbox argument into a store name, or NULL when it is not a
 * valid one (the caller of the parser decides the encoding). */
typedef char *imap_notify_name_fn(void *ctx, const struct imap_arg *a);

enum imap_notify_rc {
	IMAP_NOTIFY_OK,
	IMAP_NOTIFY_BAD,	/* syntax, or RFC 5465 §5 / §6.1 rules */
	IMAP_NOTIFY_BADEVENT,	/* NO [BADEVENT (...)], RFC 5465 §3.1 */
	IMAP_NOTIFY_NO,		/* NO: a FETCH item we do not send */
};

/* Parses the arguments of NOTIFY (after the command name) into spec
 * (deinit it whatever the result). On an error *error_out is a sentence
 * for the reply. Names are decoded with name(ctx, arg). */
enum imap_notify_rc imap_notify_parse(const struct imap_arg *args,
    size_t nargs, imap_notify_name_fn *name, void *ctx,
    struct imap_notify_spec *spec, const char **error_out);
void imap_notify_spec_deinit(struct imap_notify_spec *spec);

#endif
