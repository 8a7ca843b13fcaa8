/*
 * imap_metadata: the arguments of GETMETADATA and SETMETADATA (RFC 5464
 * §4.2, §4.3) and the rules of entry names (§3.2), without a session, so
 * that fuzz/fuzz_imap_metadata.c reaches all of it. The commands are in
 * imap_cmd_metadata.c.
 */
#include "imap/imap_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

int
imap_metadata_name_norm(const char *s, size_t len, bool is_set,
    char **norm_out, const char **error_out)
{
	char *norm;
	size_t first;

	*norm_out = NULL;
	*error_out = "Invalid entry name";
	if (len == 0 || len > STORE_METADATA_NAME_MAX || s[0] != '/') {
		*error_out = "An entry name starts with /private or /shared";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		/* RFC 5464 §3.2: no "*" or "%" (they would read as LIST
		 * wildcards), no "//", no "/" at the end. Entry names are
		 * ASCII; we also keep out space and controls. */
		if (c <= 0x20 || c >= 0x7f || c == '*' || c == '%') {
			*error_out = "An entry name holds printable ASCII "
			    "characters other than \"*\" and \"%\"";
			return -1;
		}
		if (c == '/' && (i + 1 == len || s[i + 1] == '/')) {
			*error_out = "An entry name has no empty component "
			    "and does not end with \"/\"";
			return -1;
		}
	}
	norm = xstrndup(s, len);
	/* RFC 5464 §3.2: entry names are case-insensitive. */
	for (size_t i = 0; i < len; i++)
		if (norm[i] >= 'A' && norm[i] <= 'Z')
			norm[i] = (char)(norm[i] - 'A' + 'a');
	first = strcspn(norm + 1, "/") + 1;
	if (!((first == 8 && strncmp(norm, "/private", 8) == 0) ||
	    (first == 7 && strncmp(norm, "/shared", 7) == 0))) {
		free(norm);
		*error_out = "An entry name starts with /private or /shared";
		return -1;
	}
	/* "/private" alone names no entry to set, only a tree to read. */
	if (is_set && norm[first] == '\0') {
		free(norm);
		*error_out = "An entry to set is below /private or /shared";
		return -1;
	}
	*norm_out = norm;
	return 0;
}

void
imap_metadata_get_deinit(struct imap_metadata_get *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->names[i]);
	free(g->names);
	memset(g, 0, sizeof(*g));
}

/* (MAXSIZE n DEPTH d) in any order, each at most once (RFC 5464 §4.2). */
static int
get_options(const struct imap_arg *a, struct imap_metadata_get *g,
    const char **error_out)
{
	bool has_depth = false;

	*error_out = "Syntax: GETMETADATA [(MAXSIZE n DEPTH 0|1|infinity)] "
	    "mailbox entries";
	if (a->len == 0 || a->len % 2 != 0)
		return -1;
	for (size_t i = 0; i < a->len; i += 2) {
		const struct imap_arg *k = &a->list[i], *v = &a->list[i + 1];

		if (is_imap_arg_atom(k, "MAXSIZE") && !g->has_maxsize) {
			uint32_t n;

			if (!imap_arg_number(v, &n))
				return -1;
			g->maxsize = n;
			g->has_maxsize = true;
		} else if (is_imap_arg_atom(k, "DEPTH") && !has_depth) {
			has_depth = true;
			if (is_imap_arg_atom(v, "0"))
				g->depth = IMAP_METADATA_DEPTH_0;
			else if (is_imap_arg_atom(v, "1"))
				g->depth = IMAP_METADATA_DEPTH_1;
			else if (is_imap_arg_atom(v, "INFINITY"))
				g->depth = IMAP_METADATA_DEPTH_INFINITY;
			else
				return -1;
		} else {
			return -1;
		}
	}
	return 0;
}

static int
get_name_add(struct imap_metadata_get *g, const struct imap_arg *a,
    const char **error_out)
{
	const char *str;
	size_t len;
	char *norm;

	if (!imap_arg_astring(a, &str, &len)) {
		*error_out = "An entry name is an atom or a string";
		return -1;
	}
	if (g->n == IMAP_METADATA_ENTRIES_MAX) {
		*error_out = "[LIMIT] Too many entries in one command";
		return -1;
	}
	if (imap_metadata_name_norm(str, len, false, &norm, error_out) < 0)
		return -1;
	g->names[g->n++] = norm;
	return 0;
}

int
imap_metadata_get_parse(const struct imap_cmd *cmd,
    struct imap_metadata_get *g, const char **error_out)
{
	const struct imap_arg *a = cmd->args;
	size_t i = 0;

	memset(g, 0, sizeof(*g));
	*error_out = "Syntax: GETMETADATA [(options)] mailbox entries";
	if (cmd->nargs >= 1 && a[0].kind == IMAP_ARG_LIST) {
		if (get_options(&a[0], g, error_out) < 0)
			return -1;
		i++;
	}
	if (cmd->nargs != i + 2 || a[i].kind == IMAP_ARG_LIST)
		return -1;
	g->mailbox = &a[i++];
	if (a[i].kind == IMAP_ARG_LIST) {
		if (a[i].len == 0)
			return -1;
		g->names = xcalloc(a[i].len < IMAP_METADATA_ENTRIES_MAX ?
		    a[i].len : IMAP_METADATA_ENTRIES_MAX, sizeof(*g->names));
		for (size_t k = 0; k < a[i].len; k++)
			if (get_name_add(g, &a[i].list[k], error_out) < 0)
				goto fail;
	} else {
		g->names = xcalloc(1, sizeof(*g->names));
		if (get_name_add(g, &a[i], error_out) < 0)
			goto fail;
	}
	return 0;
fail:
	imap_metadata_get_deinit(g);
	return -1;
}

void
imap_metadata_set_deinit(struct imap_metadata_set *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->entries[i].name);
	free(m->entries);
	memset(m, 0, sizeof(*m));
}

int
imap_metadata_set_parse(const struct imap_cmd *cmd,
    struct imap_metadata_set *m, const char **error_out)
{
	const struct imap_arg *l;

	memset(m, 0, sizeof(*m));
	*error_out = "Syntax: SETMETADATA mailbox (entry value ...)";
	if (cmd->nargs != 2 || cmd->args[0].kind == IMAP_ARG_LIST ||
	    cmd->args[1].kind != IMAP_ARG_LIST)
		return -1;
	l = &cmd->args[1];
	if (l->len == 0 || l->len % 2 != 0)
		return -1;
	if (l->len / 2 > IMAP_METADATA_ENTRIES_MAX) {
		*error_out = "[LIMIT] Too many entries in one command";
		return -1;
	}
	m->mailbox = &cmd->args[0];
	m->entries = xcalloc(l->len / 2, sizeof(*m->entries));
	for (size_t i = 0; i < l->len; i += 2) {
		const struct imap_arg *k = &l->list[i], *v = &l->list[i + 1];
		struct store_metadata *e = &m->entries[m->n];
		const char *str;
		size_t len;

		if (!imap_arg_astring(k, &str, &len)) {
			*error_out = "An entry name is an atom or a string";
			goto fail;
		}
		if (imap_metadata_name_norm(str, len, true, &e->name,
		    error_out) < 0)
			goto fail;
		m->n++;
		/* RFC 5464 §5: value = nstring / literal8; NIL deletes. */
		if (v->kind == IMAP_ARG_LITERAL8 && !v->is_spooled) {
			e->value = v->str;
			e->len = v->len;
		} else if (imap_arg_nstring(v, &str, &len)) {
			e->value = (char *)str;
			e->len = len;
		} else {
			*error_out = "An entry value is NIL, a string or a "
			    "literal";
			goto fail;
		}
	}
	return 0;
fail:
	imap_metadata_set_deinit(m);
	return -1;
}
