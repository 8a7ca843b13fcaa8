/*
 * libFuzzer harness for the SEARCH key parser (imap_cmd_search.c, RFC 9051
 * §6.4.4). Byte 0 sets the number of messages in a pretend selected
 * mailbox (0 to 255, UIDs 3, 6, 9, ..., \Recent in runs of three) and
 * whether "$" holds a saved result; the rest becomes "a SEARCH <rest>\r\n" for the real command
 * parser, whose arguments go to imap_search_keys_parse().
 *
 * Checked: a parsed tree stays within the store's limits (depth 32, 10,000
 * nodes), every UID range has lo <= hi, text conditions have their text,
 * and an error always has a reply text. Memory is checked by ASan (no leak
 * after deinit).
 *
 * The command functions outside the parser are never reached from it; the
 * few symbols imap_cmd_search.c and imap_view.c name for them are defined
 * here as traps.
 *
 * fuzz-sources: src/imap/imap_cmd_search.c src/imap/imap_view.c
 * fuzz-sources: src/imap/imap_parser.c src/imap/imap_parser_seqset.c
 * fuzz-sources: src/imap/imap_parser_section.c src/imap/imap_date.c
 * fuzz-sources: src/imap/imap_flags.c src/store/store_name.c
 * fuzz-sources: src/store/store_text.c src/imap/imap_out.c
 *
 * Build and run: see fuzz/README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_int.h"
#include "lib/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TRAP(ret, name, ...) ret name(__VA_ARGS__) { abort(); }

/* Never called by the key parser. */
TRAP(void, imap_done, struct imap_session *s, const char *st,
    const char *fmt, ...)
TRAP(void, imap_printf, struct imap_session *s, const char *fmt, ...)
TRAP(void, imap_write, struct imap_session *s, const void *d, size_t n)
TRAP(void, imap_write_flags, struct imap_session *s, uint32_t f,
    const char *k)
TRAP(void, imap_wait, struct imap_session *s)
TRAP(bool, imap_resumed, struct imap_session *s)
TRAP(int, store_search, struct store *st, int64_t mb,
    const struct store_cond *c, uint32_t **u, size_t *n,
    enum store_err *e)
TRAP(int, store_msg_changes, struct store *st, int64_t mb, uint64_t m,
    struct store_msg **c, size_t *nc, uint32_t **x, size_t *nx,
    uint64_t *h, enum store_err *e)
TRAP(int, store_msg_list, struct store *st, int64_t mb, uint32_t a,
    uint32_t b, struct store_msg **l, size_t *n, enum store_err *e)
TRAP(void, store_msg_list_free, struct store_msg **l, size_t n)
TRAP(int, store_mailbox_get, struct store *st, int64_t a, const char *n,
    struct store_mailbox *mb, enum store_err *e)
TRAP(void, store_mailbox_deinit, struct store_mailbox *mb)
TRAP(struct store_watch *, store_watch_new, struct store *st, int64_t mb,
    struct event_base *b, void (*cb)(void *), void *arg)
TRAP(void, store_watch_free, struct store_watch **w)
TRAP(int, store_recent_claim, struct store *st, int64_t mb, uint32_t v,
    uint32_t end, uint32_t *f, enum store_err *e)
TRAP(int, store_recent_peek, struct store *st, int64_t mb, uint32_t v,
    uint32_t *f, enum store_err *e)
TRAP(int, imap_box_get, struct imap_session *s, const char *n, uint32_t r,
    struct imap_box *b, enum store_err *e)
TRAP(void, imap_box_deinit, struct imap_box *b)
TRAP(bool, imap_acl_view_check, struct imap_session *s)
TRAP(bool, imap_notify_selected_now, struct imap_session *s, bool *x)
TRAP(void, imap_notify_messages_new, struct imap_session *s, size_t first)
TRAP(const char *, store_err_text, enum store_err e)
TRAP(void, net_conn_close, struct net_conn *c)
TRAP(bool, is_net_conn_closing, const struct net_conn *c)
TRAP(size_t, net_conn_pending, const struct net_conn *c)

/* OBJECTID's EMAILID key (imap_cmd_search.c asks the store): no message
 * has the id. */
int
imap_email_id_uids(struct imap_session *s, const char *id, uint32_t **u,
    size_t *n, enum store_err *e)
{
	*u = NULL;
	*n = 0;
	*e = STORE_OK;
	return 0;
}

static void
tree_check(const struct store_cond *c, size_t depth, size_t *nodes)
{
	if (depth > 32 || ++*nodes > 10000)
		abort();
	if (c->kind == STORE_COND_UID_RANGE && c->n > c->hi)
		abort();
	if ((c->kind == STORE_COND_HEADER || c->kind == STORE_COND_BODY ||
	    c->kind == STORE_COND_TEXT) && c->text == NULL)
		abort();
	if (c->kind == STORE_COND_HEADER && c->field == NULL)
		abort();
	for (size_t i = 0; i < c->nchildren; i++)
		tree_check(&c->children[i], depth + 1, nodes);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_session s;
	struct imap_view v;
	struct imap_parser p;
	struct imap_cmd *cmd = NULL;
	struct imap_search_keys k;
	struct buf in;
	bool cont;
	uint32_t saved[3] = { 3, 9, 300 };

	if (size < 1 || size > 8192)
		return 0;
	memset(&s, 0, sizeof(s));
	memset(&v, 0, sizeof(v));
	v.n = data[0] & 0x7f ? (size_t)(data[0] & 0x7f) * 2 : 0;
	v.msgs = calloc(v.n ? v.n : 1, sizeof(*v.msgs));
	/* MODSEQs kept (as once CONDSTORE is on): none is read from the
	 * store, which is not there. */
	v.modseqs = calloc(v.n ? v.n : 1, sizeof(*v.modseqs));
	for (size_t i = 0; i < v.n; i++) {
		v.msgs[i].uid = (uint32_t)(i + 1) * 3;
		/* Runs of three \Recent messages (RECENT, NEW, OLD). */
		v.msgs[i].is_recent = (i / 3) % 2 == 0;
	}
	if (data[0] & 0x80) {
		v.saved = saved;
		v.nsaved = 3;
	}
	s.view = &v;
	s.state = IMAP_STATE_SELECTED;
	s.is_utf8 = (data[0] & 1) != 0;
	buf_init(&in, 16384);
	buf_append(&in, "a SEARCH ", 9);
	buf_append(&in, data + 1, size - 1);
	buf_append(&in, "\r\n", 2);
	imap_parser_init(&p, 12000, 4096);
	p.is_utf8 = s.is_utf8;
	if (imap_parser_feed(&p, &in, &cmd, &cont) == PARSE_DONE) {
		if (imap_search_keys_parse(&s, cmd->args, cmd->nargs,
		    &k) == 0) {
			size_t nodes = 0;

			tree_check(&k.root, 0, &nodes);
		} else if (k.error == NULL) {
			abort();
		}
		imap_search_keys_deinit(&k);
	}
	imap_cmd_free(&cmd);
	imap_parser_deinit(&p);
	buf_deinit(&in);
	free(v.msgs);
	free(v.modseqs);
	return 0;
}
