/*
 * libFuzzer harness for the NOTIFY argument parser (imap_notify_parse.c,
 * RFC 5465 §3.1 and §8). The input becomes "a NOTIFY <input>\r\n" for the
 * real command parser, whose arguments go to imap_notify_parse(); mailbox
 * names are taken as they come (an empty one, or one holding "\x01", is
 * refused, as a decoder would).
 *
 * Checked: an error always has a reply text, BADEVENT's names the events
 * we support; an accepted SET has 1 to IMAP_NOTIFY_GROUPS_MAX groups, at
 * most one of SELECTED and SELECTED-DELAYED and only message events with
 * it, MessageNew exactly when MessageExpunge, FlagChange only with both,
 * only supported events, names exactly for SUBTREE and MAILBOXES and at
 * most IMAP_NOTIFY_NAMES_MAX of them, FETCH items only for a selected
 * MessageNew. Memory is checked by ASan (no leak after deinit).
 *
 * fuzz-sources: src/imap/imap_notify_parse.c src/imap/imap_parser.c
 * fuzz-sources: src/imap/imap_parser_seqset.c
 * fuzz-sources: src/imap/imap_parser_section.c
 *
 * Build and run: see fuzz/README.md.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_notify.h"
#include "lib/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MESSAGE_EVENTS (IMAP_NOTIFY_MESSAGE_NEW | \
	IMAP_NOTIFY_MESSAGE_EXPUNGE | IMAP_NOTIFY_FLAG_CHANGE | \
	IMAP_NOTIFY_ANNOTATION_CHANGE)

static char *
name_take(void *ctx, const struct imap_arg *a)
{
	const char *str;
	size_t len;

	(void)ctx;
	if (!imap_arg_astring(a, &str, &len) || len == 0 ||
	    memchr(str, '\x01', len) != NULL)
		return NULL;
	return strndup(str, len);
}

static void
spec_check(const struct imap_notify_spec *spec)
{
	size_t nselected = 0, nnames = 0;
	bool has_selected_new = false;

	if (spec->is_none) {
		if (spec->ngroups != 0 || spec->is_status)
			abort();
		return;
	}
	if (spec->ngroups == 0 || spec->ngroups > IMAP_NOTIFY_GROUPS_MAX)
		abort();
	for (size_t i = 0; i < spec->ngroups; i++) {
		const struct imap_notify_group *g = &spec->groups[i];
		bool is_sel = g->filter == IMAP_NOTIFY_SELECTED ||
		    g->filter == IMAP_NOTIFY_SELECTED_DELAYED;
		bool has_names = g->filter == IMAP_NOTIFY_SUBTREE ||
		    g->filter == IMAP_NOTIFY_MAILBOXES;

		if (is_sel) {
			nselected++;
			if (g->events & ~(unsigned)MESSAGE_EVENTS)
				abort();
			if (g->events & IMAP_NOTIFY_MESSAGE_NEW)
				has_selected_new = true;
		}
		if (!!(g->events & IMAP_NOTIFY_MESSAGE_NEW) !=
		    !!(g->events & IMAP_NOTIFY_MESSAGE_EXPUNGE))
			abort();
		if ((g->events & IMAP_NOTIFY_FLAG_CHANGE) &&
		    !(g->events & IMAP_NOTIFY_MESSAGE_NEW))
			abort();
		if (g->events & ~(unsigned)IMAP_NOTIFY_SUPPORTED)
			abort();
		if (has_names != (g->nnames > 0))
			abort();
		for (size_t k = 0; k < g->nnames; k++) {
			if (g->names[k] == NULL || g->names[k][0] == '\0')
				abort();
		}
		nnames += g->nnames;
	}
	if (nselected > 1 || nnames > IMAP_NOTIFY_NAMES_MAX)
		abort();
	if (spec->fetch != 0 && !has_selected_new)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser p;
	struct imap_cmd *cmd = NULL;
	struct imap_notify_spec spec;
	struct buf in;
	bool cont;

	if (size > 8192)
		return 0;
	buf_init(&in, 16384);
	buf_append(&in, "a NOTIFY ", 9);
	buf_append(&in, data, size);
	buf_append(&in, "\r\n", 2);
	imap_parser_init(&p, 12000, 4096);
	if (imap_parser_feed(&p, &in, &cmd, &cont) == PARSE_DONE) {
		const char *error = NULL;
		enum imap_notify_rc rc = imap_notify_parse(cmd->args,
		    cmd->nargs, name_take, NULL, &spec, &error);

		if (rc == IMAP_NOTIFY_OK) {
			if (error != NULL)
				abort();
			spec_check(&spec);
		} else if (error == NULL || (rc == IMAP_NOTIFY_BADEVENT &&
		    strncmp(error, "[BADEVENT (" IMAP_NOTIFY_SUPPORTED_TEXT
		    ")]", 11 + strlen(IMAP_NOTIFY_SUPPORTED_TEXT) + 2) != 0)) {
			abort();
		}
		imap_notify_spec_deinit(&spec);
	}
	imap_cmd_free(&cmd);
	imap_parser_deinit(&p);
	buf_deinit(&in);
	return 0;
}
