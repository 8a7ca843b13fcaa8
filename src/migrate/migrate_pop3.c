/*
 * migrate_pop3: copying from a POP3-only source (RFC 1939, 2449, 2595):
 * INBOX only, UIDL as the map's key (the source keeps a message's UIDL for
 * good, RFC 1939 §7), the internal date from the Date: field or now.
 * Nothing is deleted at the source: no DELE is ever sent.
 */
#include "migrate/migrate_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/base64.h"
#include "lib/util.h"

/* A line (the longest a message line may be: POP3 has no literals). */
#define POP3_LINE_MAX (1u << 20)
/* Longest UIDL (RFC 1939 §7: 1 to 70 characters). */
#define POP3_UIDL_MAX 70

struct pop3 {
	struct migrate_conn *c;
	struct line_reader lr;
	const struct migrate_options *o;
	struct migrate_result *r;
};

static int
pfail(struct pop3 *p, enum migrate_fail f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
pfail(struct pop3 *p, enum migrate_fail f, const char *fmt, ...)
{
	va_list ap;

	if (p->r->fail == MIGRATE_OK) {
		va_start(ap, fmt);
		vsnprintf(p->r->error, sizeof(p->r->error), fmt, ap);
		va_end(ap);
		p->r->fail = f;
	}
	return -1;
}

/* The next line into out (NUL-terminated, control characters kept), at
 * most outlen - 1 bytes; *len_out its length. */
static int
line_get(struct pop3 *p, char *out, size_t outlen, size_t *len_out)
{
	for (;;) {
		const char *line;
		size_t len;
		enum parse_rc rc = line_reader_next(&p->lr, &p->c->in, &line,
		    &len);
		ssize_t n;

		if (rc == PARSE_DONE) {
			if (len >= outlen)
				return pfail(p, MIGRATE_FAIL_PROTOCOL, "the "
				    "source sent a line longer than %zu bytes",
				    outlen - 1);
			memcpy(out, line, len);
			out[len] = '\0';
			*len_out = len;
			return 0;
		}
		if (rc == PARSE_ERROR)
			return pfail(p, MIGRATE_FAIL_PROTOCOL, "the source "
			    "sent a line longer than the limit");
		line_reader_compact(&p->lr, &p->c->in);
		n = migrate_conn_read(p->c);
		if (n <= 0)
			return pfail(p, MIGRATE_FAIL_CONNECT, n == 0 ?
			    "the source closed the connection" :
			    "reading from the source failed or timed out");
	}
}

/* Sends a command (not logged: it may hold a password) and reads the
 * status line: 1 for +OK, 0 for -ERR (text in line), -1 on failure. */
static int
pcmd(struct pop3 *p, const char *command, char *line, size_t linelen)
{
	size_t len;

	if (migrate_conn_write(p->c, command, strlen(command)) < 0 ||
	    migrate_conn_write(p->c, "\r\n", 2) < 0)
		return pfail(p, MIGRATE_FAIL_CONNECT, "writing to the source "
		    "failed or timed out");
	if (line_get(p, line, linelen, &len) < 0)
		return -1;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20)
			line[i] = '?';
	if (strncmp(line, "+OK", 3) == 0)
		return 1;
	if (strncmp(line, "-ERR", 4) == 0)
		return 0;
	return pfail(p, MIGRATE_FAIL_PROTOCOL, "the source's answer is not "
	    "POP3: %.80s", line);
}

struct uidl {
	uint32_t n;		/* message number this session */
	char id[POP3_UIDL_MAX + 1];
	uint64_t size;
};

static int
uidl_read(struct pop3 *p, struct uidl **v_out, size_t *n_out)
{
	char line[256];
	size_t len, cap = 0;

	for (;;) {
		char *sp;
		uint64_t n;

		if (line_get(p, line, sizeof(line), &len) < 0)
			return -1;
		if (len == 1 && line[0] == '.')
			return 0;
		sp = strchr(line, ' ');
		if (sp == NULL || !migrate_text_u64(line, (size_t)(sp - line),
		    &n) || n == 0 || n > UINT32_MAX || strlen(sp + 1) == 0 ||
		    strlen(sp + 1) > POP3_UIDL_MAX)
			return pfail(p, MIGRATE_FAIL_PROTOCOL, "a UIDL line "
			    "that does not parse");
		for (const char *q = sp + 1; *q; q++)
			if ((unsigned char)*q <= 0x20 ||
			    (unsigned char)*q > 0x7e)
				return pfail(p, MIGRATE_FAIL_PROTOCOL, "a "
				    "UIDL with a character RFC 1939 forbids");
		if (*n_out >= MIGRATE_POP3_MESSAGES_MAX)
			return pfail(p, MIGRATE_FAIL_PROTOCOL, "the source's "
			    "UIDL lists more than %u messages "
			    "(MIGRATE_POP3_MESSAGES_MAX)",
			    MIGRATE_POP3_MESSAGES_MAX);
		if (*n_out == cap) {
			cap = cap ? cap * 2 : 256;
			*v_out = xrealloc(*v_out, cap * sizeof(**v_out));
		}
		(*v_out)[*n_out].n = (uint32_t)n;
		snprintf((*v_out)[*n_out].id, sizeof((*v_out)[*n_out].id),
		    "%s", sp + 1);
		(*v_out)[*n_out].size = 0;
		(*n_out)++;
	}
}

/* The Date: field of a header, as unix time; 0 when missing or bad. */
static int64_t
header_date(const char *msg, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t e = i;

		while (e < len && msg[e] != '\n')
			e++;
		if (e == i || (e == i + 1 && msg[i] == '\r'))
			return 0;
		if (e - i > 5 && strncasecmp(msg + i, "Date:", 5) == 0) {
			int64_t t;

			if (migrate_rfc5322_date_parse(msg + i + 5,
			    e - i - 5, &t))
				return t;
			return 0;
		}
		i = e + 1;
	}
	return 0;
}

/* RETR n into body (dot-unstuffed, CRLF line ends). */
static int
retr(struct pop3 *p, uint32_t n, struct buf *body, bool *is_too_big)
{
	char cmdline[32], *line = xmalloc(POP3_LINE_MAX + 1);
	size_t len;
	int rc;

	*is_too_big = false;
	buf_clear(body);
	snprintf(cmdline, sizeof(cmdline), "RETR %u", n);
	rc = pcmd(p, cmdline, line, POP3_LINE_MAX + 1);
	if (rc <= 0) {
		free(line);
		return rc < 0 ? -1 : pfail(p, MIGRATE_FAIL_PROTOCOL, "RETR "
		    "%u refused", n);
	}
	for (;;) {
		const char *l = line;

		if (line_get(p, line, POP3_LINE_MAX + 1, &len) < 0) {
			free(line);
			return -1;
		}
		if (len == 1 && line[0] == '.')
			break;
		if (line[0] == '.') {	/* RFC 1939 §3 byte-stuffing */
			l++;
			len--;
		}
		if (!*is_too_big && (buf_append(body, l, len) < 0 ||
		    buf_append(body, "\r\n", 2) < 0))
			*is_too_big = true;
	}
	free(line);
	return 0;
}

/* The entry of the map for uidl: the map comes sorted by key (SQLite's
 * binary order, which is strcmp's), so a binary search finds it. */
static ssize_t
map_find(const struct store_migrate_entry *map, size_t n, const char *uidl)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(map[mid].key, uidl);

		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int
migrate_pop3_run(struct migrate_conn *c, struct store *st, int64_t account,
    const struct migrate_options *o, const char *source,
    struct migrate_result *r)
{
	struct pop3 p = { .c = c, .o = o, .r = r };
	struct migrate_folder_result *fr;
	struct migrate_sink sink;
	struct store_migrate_entry *map = NULL;
	struct uidl *ids = NULL;
	size_t nmap = 0, nids = 0;
	bool *is_seen = NULL;
	struct buf body;
	enum store_err err;
	char line[1024];
	int rc = -1, ok;
	uint64_t done = 0, total = 0;

	line_reader_init(&p.lr, POP3_LINE_MAX);
	buf_init(&body, (size_t)o->message_max);
	if (migrate_sink_init(&sink, st, account) < 0) {
		buf_deinit(&body);
		return pfail(&p, MIGRATE_FAIL_STORE, "cannot make an event "
		    "base");
	}
	r->folders = xcalloc(1, sizeof(*r->folders));
	r->nfolders = 1;
	fr = &r->folders[0];
	fr->source = xstrdup("INBOX");
	fr->target = xstrdup("INBOX");

	{
		size_t len;

		if (line_get(&p, line, sizeof(line), &len) < 0)
			goto out;
		if (strncmp(line, "+OK", 3) != 0) {
			pfail(&p, MIGRATE_FAIL_PROTOCOL, "the source's "
			    "greeting is not a POP3 greeting");
			goto out;
		}
	}
	if (c->tls == NULL) {
		bool has_stls = false;

		ok = pcmd(&p, "CAPA", line, sizeof(line));
		if (ok < 0)
			goto out;
		if (ok == 1) {
			for (;;) {
				size_t len;

				if (line_get(&p, line, sizeof(line), &len) < 0)
					goto out;
				if (len == 1 && line[0] == '.')
					break;
				if (strcasecmp(line, "STLS") == 0)
					has_stls = true;
			}
		}
		if (has_stls) {
			if ((ok = pcmd(&p, "STLS", line, sizeof(line))) <= 0) {
				if (ok == 0)
					pfail(&p, MIGRATE_FAIL_CONNECT, "STLS "
					    "refused: %s", line);
				goto out;
			}
			/* RFC 2595 §4: what came before TLS is gone. */
			line_reader_init(&p.lr, POP3_LINE_MAX);
			if (migrate_conn_tls(c, o->ca_file, o->is_insecure_tls,
			    r->error, sizeof(r->error)) < 0) {
				r->fail = MIGRATE_FAIL_CONNECT;
				goto out;
			}
		} else if (!o->is_insecure) {
			pfail(&p, MIGRATE_FAIL_CONNECT, "the source does not "
			    "offer STLS: use pop3s://, or --insecure on a "
			    "network you trust");
			goto out;
		}
	}
	if (o->oauth_token != NULL) {
		char *ir = xasprintf("user=%s\001auth=Bearer %s\001\001",
		    o->url->user, o->oauth_token);
		char *b64 = base64_encode(ir, strlen(ir), false);
		char *command = xasprintf("AUTH XOAUTH2 %s", b64);

		ok = pcmd(&p, command, line, sizeof(line));
		secret_wipe(ir, strlen(ir));
		secret_wipe(b64, strlen(b64));
		secret_wipe(command, strlen(command));
		free(ir);
		free(b64);
		free(command);
	} else {
		char *command = xasprintf("USER %s", o->url->user);

		ok = pcmd(&p, command, line, sizeof(line));
		free(command);
		if (ok == 1) {
			command = xasprintf("PASS %s", o->password);
			ok = pcmd(&p, command, line, sizeof(line));
			secret_wipe(command, strlen(command));
			free(command);
		}
	}
	if (ok < 0)
		goto out;
	if (ok == 0) {
		pfail(&p, MIGRATE_FAIL_AUTH, "the source refused the login of "
		    "%s: %s", o->url->user, line);
		goto out;
	}
	if ((ok = pcmd(&p, "UIDL", line, sizeof(line))) <= 0) {
		if (ok == 0)
			pfail(&p, MIGRATE_FAIL_PROTOCOL, "the source does not "
			    "support UIDL: it cannot be copied again safely");
		goto out;
	}
	if (uidl_read(&p, &ids, &nids) < 0)
		goto out;
	fr->source_messages = nids;
	if (store_migrate_list(st, account, source, "INBOX", &map, &nmap,
	    &err) < 0) {
		pfail(&p, MIGRATE_FAIL_STORE, "cannot read the map: %s",
		    store_err_text(err));
		goto out;
	}
	is_seen = xcalloc(nmap + 1, sizeof(*is_seen));
	for (size_t i = 0; i < nids; i++) {
		ssize_t k = map_find(map, nmap, ids[i].id);

		if (k >= 0)
			is_seen[k] = true;
		else
			total++;
	}
	for (size_t i = 0; i < nids; i++) {
		struct store_migrate_entry e;
		bool is_too_big;
		char hash[65], *mid;

		if (map_find(map, nmap, ids[i].id) >= 0)
			continue;
		if (retr(&p, ids[i].n, &body, &is_too_big) < 0)
			goto out;
		if (is_too_big) {
			fr->failed++;
			free(fr->note);
			fr->note = xstrdup("a message is over --max-message");
			continue;
		}
		migrate_hash(body.data, body.len, hash);
		mid = migrate_message_id(body.data, body.len);
		e = (struct store_migrate_entry){
			.uidvalidity = 0, .key = ids[i].id, .message_id = mid,
			.hash = hash, .size = body.len,
		};
		{
			int64_t t = header_date(body.data, body.len);

			if (migrate_sink_put(&sink, fr, source, "INBOX",
			    "INBOX", body.data, body.len, 0, NULL,
			    t != 0 ? t : (int64_t)time(NULL), &e) < 0) {
				free(mid);
				pfail(&p, MIGRATE_FAIL_STORE, "the store is "
				    "closing");
				goto out;
			}
		}
		free(mid);
		done++;
		if (o->progress != NULL)
			o->progress(o->progress_arg, "INBOX", done, total);
	}
	for (size_t k = 0; k < nmap; k++) {
		if (is_seen[k])
			continue;
		fr->deleted_at_source++;
		if (o->is_delete) {
			struct store_change ch = {
				.mailbox = map[k].mailbox, .uids = &map[k].uid,
				.nuids = 1, .kind = STORE_CHANGE_EXPUNGE,
			};
			struct store_change_result cr;

			if (store_change_commit(st, &ch, &cr) < 0 &&
			    cr.err != STORE_NOT_FOUND) {
				fr->failed++;
			} else if (store_migrate_del(st, account, source,
			    "INBOX", 0, map[k].key, &err) == 0) {
				fr->deleted_here++;
			}
			store_change_result_deinit(&cr);
		}
	}
	(void)migrate_conn_write(c, "QUIT\r\n", 6);
	rc = 0;
out:
	migrate_sink_deinit(&sink);
	buf_deinit(&body);
	store_migrate_list_free(&map, nmap);
	free(is_seen);
	free(ids);
	if (rc < 0 && r->fail == MIGRATE_OK)
		r->fail = MIGRATE_FAIL_PROTOCOL;
	return rc;
}
