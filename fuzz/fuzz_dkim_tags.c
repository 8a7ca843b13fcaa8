/*
 * fuzz_dkim_tags: the DKIM tag-list parser (RFC 6376 §3.2), the
 * signature and key-record readers and the canonicalizer behind them
 * (authn_dkim.c, authn_dkim_canon.c), and the Authentication-Results
 * entries they make (authn_ar.c).
 *
 * Input: up to three fields separated by NUL bytes: a tag list, a key
 * record (every TXT answer of a fake DNS), a message (header section,
 * empty line, body). Missing fields are empty.
 *
 * Checked: the tag parser returns -1 or at most AUTHN_DKIM_TAGS_MAX tags,
 * each name and value inside the input, names of at most
 * AUTHN_DKIM_TAG_NAME_MAX bytes and no value starting or ending with
 * white space; a verdict has at most AUTHN_DKIM_SIGS_MAX results, each
 * one of the seven of RFC 8601, NUL-terminated names; the canonical body
 * is never longer than twice the input plus 2 (CRLF for a bare CR or LF,
 * and simple's empty-body CRLF).
 *
 * fuzz-sources: src/authn/authn_dkim.c src/authn/authn_dkim_canon.c src/authn/authn_crypto.c src/authn/authn_ar.c
 * fuzz-packages: libcrypto
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authn/authn.h"
#include "lib/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_dkim_tags: invariant broken: %s\n", what);
		abort();
	}
}

static const char *key_record;

static enum authn_dns_rc
fake_query(void *arg, enum authn_dns_type type, const char *name,
    char ***rrs_out, size_t *n_out)
{
	(void)arg;
	check(type == AUTHN_DNS_TXT, "only TXT is asked");
	check(strlen(name) <= 253, "a name over 253 bytes was asked");
	*rrs_out = xcalloc(2, sizeof(char *));
	(*rrs_out)[0] = xstrdup(key_record);
	*n_out = 1;
	return AUTHN_DNS_OK;
}

static void
count(void *arg, const void *d, size_t n)
{
	(void)d;
	*(uint64_t *)arg += n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = xmalloc(size + 1), *field[3] = { "", "", "" };
	struct authn_dkim_tag tags[AUTHN_DKIM_TAGS_MAX];
	struct authn_dns dns = { fake_query, NULL };
	char err[160];
	size_t nf = 0, start = 0, mlen;
	int n;

	memcpy(in, data, size);
	in[size] = '\0';
	for (size_t i = 0; i <= size && nf < 3; i++) {
		if (i == size || in[i] == '\0') {
			field[nf++] = in + start;
			start = i + 1;
		}
	}
	mlen = nf == 3 ? size - (size_t)(field[2] - in) : 0;

	n = authn_dkim_tags_parse(field[0], strlen(field[0]), tags,
	    AUTHN_DKIM_TAGS_MAX, err, sizeof(err));
	check(n >= -1 && n <= AUTHN_DKIM_TAGS_MAX, "tag count");
	for (int i = 0; i < n; i++) {
		const struct authn_dkim_tag *t = &tags[i];

		check(t->name >= field[0] && t->value >= field[0] &&
		    t->value + t->value_len <= field[0] + strlen(field[0]),
		    "tag outside the input");
		check(t->name_len >= 1 && t->name_len <=
		    AUTHN_DKIM_TAG_NAME_MAX, "tag name length");
		check(t->value_len == 0 || (!strchr(" \t\r\n", t->value[0]) &&
		    !strchr(" \t\r\n", t->value[t->value_len - 1])),
		    "white space around a value");
	}

	key_record = field[1];
	{
		struct authn_dkim *d = authn_dkim_new(field[2], mlen,
		    1700000000);

		if (d != NULL) {
			struct authn_dkim_verdict v;
			struct authn_ar *ar = authn_ar_new("mx.test");
			char *f;

			authn_dkim_body(d, field[2], mlen);
			authn_dkim_verify(d, &dns, &v);
			check(v.n >= 1 && v.n <= AUTHN_DKIM_SIGS_MAX,
			    "verdict count");
			for (size_t i = 0; i < v.n; i++) {
				check(v.sigs[i].result >= AUTHN_DKIM_PASS &&
				    v.sigs[i].result <= AUTHN_DKIM_PERMERROR,
				    "result");
				check(memchr(v.sigs[i].domain, '\0',
				    sizeof(v.sigs[i].domain)) != NULL &&
				    memchr(v.sigs[i].selector, '\0',
				    sizeof(v.sigs[i].selector)) != NULL,
				    "names terminated");
			}
			authn_dkim_ar_add(ar, &v);
			f = authn_ar_field(ar);
			free(f);
			authn_ar_free(&ar);
			authn_dkim_free(&d);
		}
	}
	for (int c = 0; c < 2; c++) {
		struct authn_dkim_body b;
		uint64_t got = 0;

		authn_dkim_body_init(&b, c ? AUTHN_DKIM_RELAXED :
		    AUTHN_DKIM_SIMPLE, UINT64_MAX, count, &got);
		authn_dkim_body_update(&b, field[2], mlen);
		authn_dkim_body_final(&b);
		check(got == b.length && got <= 2 * (uint64_t)mlen + 2,
		    "canonical body length");
	}
	free(in);
	return 0;
}
