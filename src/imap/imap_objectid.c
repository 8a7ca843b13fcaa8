/*
 * imap_objectid: the identifiers of OBJECTID (RFC 8474). MAILBOXID names a
 * mailbox for its whole life: the store's row and its UIDVALIDITY, which
 * RENAME keeps and a mailbox created again under an old name never has.
 * EMAILID names a message body within the account: COPY and MOVE keep the
 * body, so they keep the EMAILID (RFC 8474 §5.1). Both are keyed hashes
 * (auth_object_id) that mix in the account, so an identifier says nothing
 * about how many mailboxes or messages the server holds, and the same
 * message delivered to two accounts (one body in the store) has unrelated
 * EMAILIDs in each. THREADID is NIL: postern keeps no threads (§5.2).
 */
#include "imap/imap_int.h"

#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

void
imap_mailbox_id(struct imap_session *s, int64_t mailbox,
    uint32_t uidvalidity, char out[AUTH_OBJECT_ID_LEN])
{
	auth_object_id(s->ctx->auth, 'F', s->id.account, mailbox,
	    (int64_t)uidvalidity, out);
}

void
imap_email_id(struct imap_session *s, int64_t blob,
    char out[AUTH_OBJECT_ID_LEN])
{
	auth_object_id(s->ctx->auth, 'M', s->id.account, blob, 0, out);
}

int
imap_email_id_uids(struct imap_session *s, const char *id, uint32_t **uids_out,
    size_t *n_out, enum store_err *err_out)
{
	struct store_msg *list = NULL;
	size_t n = 0, found = 0;
	char mine[AUTH_OBJECT_ID_LEN];

	*uids_out = NULL;
	*n_out = 0;
	/* Every identifier we make has this length and starts with M: no
	 * need to hash the mailbox for anything else. */
	if (strlen(id) != AUTH_OBJECT_ID_LEN - 1 || id[0] != 'M')
		return 0;
	if (store_msg_list(s->ctx->store, s->view->mailbox, 1, UINT32_MAX,
	    &list, &n, err_out) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		imap_email_id(s, list[i].blob, mine);
		if (strcmp(mine, id) != 0)
			continue;
		if (*uids_out == NULL)
			*uids_out = xcalloc(n, sizeof(**uids_out));
		(*uids_out)[found++] = list[i].uid;
	}
	store_msg_list_free(&list, n);
	*n_out = found;
	return 0;
}
