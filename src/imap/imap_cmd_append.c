/*
 * imap_cmd_append: APPEND (RFC 9051 §6.3.12) answering APPENDUID (RFC 4315
 * §3), with the message as a literal, a LITERAL+ literal (RFC 7888) or a
 * literal8 (RFC 3516 §4.4). The parser has already read the whole literal
 * within imap_literal_max; the message goes to the store as one delivery
 * and the command ends in the delivery's callback, on the session's
 * thread, once the message is durable.
 */
#include "imap/imap_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"

static void
append_failed(struct imap_session *s, enum store_err err)
{
	switch (err) {
	case STORE_NOT_FOUND:
		/* RFC 9051 §6.3.12: the client may CREATE it and retry. */
		imap_done(s, "NO", "[TRYCREATE] No such mailbox");
		return;
	case STORE_OVER_QUOTA:
		imap_done(s, "NO", "[OVERQUOTA] Quota exceeded");
		return;
	case STORE_NOT_ALLOWED:
		imap_done(s, "NO", "[LIMIT] The mailbox cannot take more "
		    "messages");
		return;
	case STORE_INVALID:
		imap_done(s, "NO", "[CANNOT] The message or its flags cannot "
		    "be stored");
		return;
	case STORE_NO_SPACE:
		/* Not [OVERQUOTA]: that is the user's quota (RFC 5530 §3);
		 * the server's disk being full is a temporary failure of
		 * ours. */
		log_error(s->sid, "imap.append_failed error=\"%s\"",
		    store_err_text(err));
		imap_done(s, "NO", "[UNAVAILABLE] The server is out of disk "
		    "space, try again later");
		return;
	default:
		log_error(s->sid, "imap.append_failed error=\"%s\"",
		    store_err_text(err));
		imap_done(s, "NO", "[UNAVAILABLE] Temporary failure, try again "
		    "later");
		return;
	}
}

static void
appended(void *arg, const struct store_delivery_result *results, size_t n)
{
	struct imap_session *s = arg;
	const struct store_delivery_result *r = &results[0];

	if (!imap_resumed(s))
		return;
	if (n < 1 || r->err != STORE_OK) {
		append_failed(s, n < 1 ? STORE_TEMP : r->err);
		return;
	}
	/* The selected mailbox grew: imap_done()'s sync sends EXISTS. */
	if (s->view != NULL && s->view->mailbox == r->mailbox)
		s->view->is_stale = true;
	imap_done(s, "OK", "[APPENDUID %" PRIu32 " %" PRIu32 "] APPEND "
	    "completed", r->uidvalidity, r->uid);
}

/* APPEND mailbox [flag-list] [date-time] literal. Reads the optional
 * parts; returns the message argument, or NULL with *error_out set. */
static const struct imap_arg *
append_args(const struct imap_cmd *cmd, uint32_t *flags_out,
    char **keywords_out, int64_t *date_out, const char **error_out)
{
	const struct imap_arg *a = cmd->args;
	size_t i = 1, n = cmd->nargs;

	*flags_out = 0;
	*keywords_out = NULL;
	*date_out = 0;
	*error_out = "Syntax: APPEND mailbox [(flags)] [date-time] message";
	if (n < 2 || n > 4)
		return NULL;
	if (a[n - 1].kind != IMAP_ARG_LITERAL &&
	    a[n - 1].kind != IMAP_ARG_LITERAL8)
		return NULL;
	if (i < n - 1 && a[i].kind == IMAP_ARG_LIST) {
		/* RFC 9051 §6.3.12: \Recent cannot be set by APPEND. */
		if (imap_flags_parse(&a[i], flags_out, keywords_out) < 0) {
			*error_out = "Invalid flag list";
			return NULL;
		}
		i++;
	}
	if (i < n - 1 && a[i].kind == IMAP_ARG_QUOTED) {
		if (!imap_date_time_parse(a[i].str, date_out)) {
			*error_out = "Invalid date-time, expected "
			    "\"dd-Mon-yyyy hh:mm:ss +zzzz\"";
			free(*keywords_out);
			*keywords_out = NULL;
			return NULL;
		}
		i++;
	}
	/* Anything else before the message (MULTIAPPEND, CATENATE) is not
	 * offered. */
	if (i != n - 1) {
		free(*keywords_out);
		*keywords_out = NULL;
		return NULL;
	}
	return &a[n - 1];
}

void
imap_cmd_append(struct imap_session *s, const struct imap_cmd *cmd)
{
	const struct imap_arg *msg;
	struct store_mailbox mb;
	struct store_delivery *d;
	const char *error;
	char *name, *keywords;
	uint32_t flags;
	int64_t date;
	enum store_err err;

	msg = append_args(cmd, &flags, &keywords, &date, &error);
	if (msg == NULL) {
		imap_done(s, "BAD", "%s", error);
		return;
	}
	if (msg->len == 0) {
		free(keywords);
		imap_done(s, "NO", "An empty message cannot be stored");
		return;
	}
	name = imap_mailbox_arg(s, &cmd->args[0]);
	if (name == NULL) {
		free(keywords);
		imap_done(s, "BAD", "Invalid mailbox name");
		return;
	}
	/* Refuse a missing mailbox before writing the message anywhere;
	 * the delivery checks again when it commits. */
	if (store_mailbox_get(s->ctx->store, s->id.account, name, &mb,
	    &err) < 0) {
		free(name);
		free(keywords);
		if (err == STORE_INVALID)
			imap_done_store_err(s, err);	/* the name's fault */
		else
			append_failed(s, err);
		return;
	}
	store_mailbox_deinit(&mb);
	d = store_delivery_new(s->ctx->store, &err);
	if (d == NULL || store_delivery_write(d, msg->str, msg->len,
	    &err) < 0) {
		store_delivery_abort(&d);
		free(name);
		free(keywords);
		append_failed(s, err);
		return;
	}
	store_delivery_add(d, s->id.account, name, flags, keywords, date);
	free(name);
	free(keywords);
	imap_wait(s);
	if (store_delivery_submit(d, s->base, appended, s) < 0) {
		imap_wait_cancel(s);
		append_failed(s, STORE_TEMP);
	}
}
