/*
 * queue_dkim: DKIM signatures (RFC 6376) on mail that leaves for other
 * domains from one of ours: relaxed/relaxed canonicalization, rsa-sha256
 * or ed25519-sha256 (RFC 8463) by the key `postern dkim generate` made.
 * The runner signs each message as it starts the job; the field goes in
 * front of the message on the wire, the stored body is not changed.
 */
#include "queue/queue.h"
#include "queue/queue_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth/auth.h"
#include "authn/authn.h"
#include "lib/base64.h"
#include "lib/util.h"
#include "net/net.h"

/* The most header bytes we read to sign; a message whose header is
 * longer goes out unsigned. */
#define DKIM_HEADER_MAX (256 * 1024)
/* File bytes read per step. */
#define DKIM_CHUNK (64 * 1024)

/* The fields we sign when present (RFC 6376 §5.4.1 recommends these). */
static const char *const signed_fields[] = {
	"from", "reply-to", "sender", "subject", "date", "message-id", "to",
	"cc", "mime-version", "content-type", "content-transfer-encoding",
	"in-reply-to", "references",
};

/* ---- Body (RFC 6376 §3.4.4, relaxed; authn_dkim_canon.c) ------------ */

static void
body_hash(void *arg, const void *data, size_t len)
{
	auth_sha256_update(arg, data, len);
}

void
queue_dkim_body_init(struct queue_dkim_body *b)
{
	b->hash = auth_sha256_new();
	authn_dkim_body_init(&b->canon, AUTHN_DKIM_RELAXED, UINT64_MAX,
	    body_hash, b->hash);
}

void
queue_dkim_body_update(struct queue_dkim_body *b, const char *data,
    size_t len)
{
	authn_dkim_body_update(&b->canon, data, len);
}

void
queue_dkim_body_final(struct queue_dkim_body *b, unsigned char out[32])
{
	authn_dkim_body_final(&b->canon);
	auth_sha256_final(&b->hash, out);
}

/* ---- Signing -------------------------------------------------------- */

struct field {
	const char *p;		/* the field as in the message */
	size_t len;		/* up to its last line's CRLF, excluded */
};

/* Splits the header block (text up to the empty line) into fields.
 * Returns how many, at most max. */
static size_t
fields_split(const char *h, size_t len, struct field *f, size_t max)
{
	size_t n = 0, i = 0;

	while (i < len && n < max) {
		size_t start = i, end;

		/* A field runs on while the next line starts with WSP. */
		for (;;) {
			const char *nl = memchr(h + i, '\n', len - i);

			if (nl == NULL) {
				i = len;
				end = len;
				break;
			}
			end = (size_t)(nl - h);
			i = end + 1;
			if (i >= len || (h[i] != ' ' && h[i] != '\t'))
				break;
		}
		if (end > start && h[end - 1] == '\r')
			end--;
		if (end > start) {
			f[n].p = h + start;
			f[n].len = end - start;
			n++;
		}
	}
	return n;
}

static bool
is_field_named(const struct field *f, const char *name)
{
	size_t nl = strlen(name), i = nl;

	if (f->len <= nl || strncasecmp(f->p, name, nl) != 0)
		return false;
	while (i < f->len && (f->p[i] == ' ' || f->p[i] == '\t'))
		i++;
	return i < f->len && f->p[i] == ':';
}

char *
queue_dkim_sign(const char *header, size_t hlen,
    const unsigned char bh[32], const struct net_key *key,
    const char *domain, const char *selector, int64_t now)
{
	struct field fields[256];
	struct queue_text data = { 0 }, sig = { 0 }, names = { 0 };
	size_t n = fields_split(header, hlen, fields, 256);
	bool is_ed = net_key_type_of(key) == NET_KEY_ED25519;
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	char *b64, *canon, tbuf[32];

	/* RFC 6376 §5.4.2: several instances of a name are signed from the
	 * bottom up. */
	for (size_t k = 0; k < sizeof(signed_fields) /
	    sizeof(signed_fields[0]); k++) {
		for (size_t i = n; i-- > 0;) {
			if (!is_field_named(&fields[i], signed_fields[k]))
				continue;
			canon = authn_dkim_header_relaxed(fields[i].p,
			    fields[i].len);
			queue_text_str(&data, canon);
			queue_text_add(&data, "\r\n", 2);
			free(canon);
			if (names.len > 0)
				queue_text_add(&names, ":", 1);
			queue_text_str(&names, signed_fields[k]);
		}
	}
	if (names.len == 0 || strstr(names.p, "from") == NULL) {
		/* RFC 6376 §5.4: From is required; no From, no signature. */
		free(data.p);
		free(names.p);
		return NULL;
	}
	b64 = base64_encode(bh, 32, false);
	snprintf(tbuf, sizeof(tbuf), "%lld", (long long)now);
	queue_text_str(&sig, "DKIM-Signature: v=1; a=");
	queue_text_str(&sig, is_ed ? "ed25519-sha256" : "rsa-sha256");
	queue_text_str(&sig, "; c=relaxed/relaxed; d=");
	queue_text_str(&sig, domain);
	queue_text_str(&sig, "; s=");
	queue_text_str(&sig, selector);
	queue_text_str(&sig, ";\r\n\tt=");
	queue_text_str(&sig, tbuf);
	queue_text_str(&sig, "; h=");
	queue_text_str(&sig, names.p);
	queue_text_str(&sig, ";\r\n\tbh=");
	queue_text_str(&sig, b64);
	queue_text_str(&sig, ";\r\n\tb=");
	free(b64);
	free(names.p);
	/* RFC 6376 §3.7: the signature field itself, b= empty, last and
	 * without its CRLF. */
	canon = authn_dkim_header_relaxed(sig.p, sig.len);
	queue_text_str(&data, canon);
	free(canon);
	if (net_key_sign(key, data.p, data.len, &raw, &rawlen) < 0) {
		free(data.p);
		free(sig.p);
		return NULL;
	}
	free(data.p);
	b64 = base64_encode(raw, rawlen, false);
	free(raw);
	/* Folded every 72 characters; whitespace in b= is ignored (RFC 6376
	 * §3.5). */
	for (size_t i = 0, l = strlen(b64); i < l; i += 72) {
		if (i > 0)
			queue_text_str(&sig, "\r\n\t ");
		queue_text_add(&sig, b64 + i, l - i < 72 ? l - i : 72);
	}
	queue_text_str(&sig, "\r\n");
	free(b64);
	return sig.p;
}

char *
queue_dkim_sign_fd(int fd, uint64_t size, const struct net_key *key,
    const char *domain, const char *selector, int64_t now)
{
	struct queue_dkim_body body;
	unsigned char bh[32];
	char *buf = xmalloc(DKIM_CHUNK);
	char *header = NULL, *sig;
	size_t hlen = 0;
	uint64_t off = 0, body_off = 0;
	bool has_header = false;

	/* The header: everything up to the first empty line. */
	while (!has_header && off < size && off < DKIM_HEADER_MAX) {
		ssize_t n = pread(fd, buf, DKIM_CHUNK, (off_t)off);
		char *end;

		if (n <= 0)
			break;
		header = xrealloc(header, hlen + (size_t)n + 1);
		memcpy(header + hlen, buf, (size_t)n);
		hlen += (size_t)n;
		header[hlen] = '\0';
		off += (uint64_t)n;
		if ((end = strstr(header, "\r\n\r\n")) != NULL) {
			has_header = true;
			body_off = (uint64_t)(end - header) + 4;
			hlen = (size_t)(end - header) + 2;
		}
	}
	if (!has_header) {
		free(header);
		free(buf);
		return NULL;
	}
	queue_dkim_body_init(&body);
	for (off = body_off; off < size;) {
		ssize_t n = pread(fd, buf, DKIM_CHUNK, (off_t)off);

		if (n <= 0)
			break;
		queue_dkim_body_update(&body, buf, (size_t)n);
		off += (uint64_t)n;
	}
	queue_dkim_body_final(&body, bh);
	free(buf);
	if (off < size) {
		free(header);
		return NULL;
	}
	sig = queue_dkim_sign(header, hlen, bh, key, domain, selector, now);
	free(header);
	return sig;
}

char *
queue_dkim_key_path(const char *data_dir, const char *domain)
{
	return xasprintf("%s/dkim/%s.pem", data_dir, domain);
}

char *
queue_dkim_selector_path(const char *data_dir, const char *domain)
{
	return xasprintf("%s/dkim/%s.selector", data_dir, domain);
}
