/*
 * Unit tests for DKIM (src/authn): the canonicalizer the queue signs with
 * and the verifier checks with (RFC 6376 §3.4, the example of §3.4.5, both
 * algorithms, fed whole and a byte at a time, with l=), the tag-list
 * parser (§3.2), and the verifier against a table DNS: the queue's own
 * signatures (RSA and Ed25519) verify, a changed header or body fails,
 * and the key record's flags decide as §3.6.1 says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "authn/authn.h"
#include "lib/util.h"
#include "net/net.h"
#include "queue/queue_int.h"

/* ---- Canonicalization ---------------------------------------------- */

struct sink {
	char buf[4096];
	size_t len;
};

static void
sink_add(void *arg, const void *data, size_t len)
{
	struct sink *s = arg;

	assert_true(s->len + len < sizeof(s->buf));
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	s->buf[s->len] = '\0';
}

/* The canonical body of text, fed in pieces of step bytes. */
static void
expect_body(enum authn_dkim_canon c, uint64_t limit, const char *text,
    const char *want, uint64_t want_length)
{
	size_t len = strlen(text);
	size_t steps[] = { len + 1, 1, 2, 3 };

	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		struct authn_dkim_body b;
		struct sink s = { .len = 0 };

		authn_dkim_body_init(&b, c, limit, sink_add, &s);
		for (size_t i = 0; i < len; i += steps[k])
			authn_dkim_body_update(&b, text + i,
			    len - i < steps[k] ? len - i : steps[k]);
		authn_dkim_body_final(&b);
		assert_int_equal(s.len, strlen(want));
		assert_memory_equal(s.buf, want, s.len);
		assert_int_equal(b.length, want_length);
	}
}

static void
test_authn_dkim_body_rfc6376_example(void **state)
{
	static const char body[] = " C \r\nD \t E\r\n\r\n\r\n";

	(void)state;
	/* §3.4.5. */
	expect_body(AUTHN_DKIM_SIMPLE, UINT64_MAX, body, " C \r\nD \t E\r\n",
	    12);
	expect_body(AUTHN_DKIM_RELAXED, UINT64_MAX, body, " C\r\nD E\r\n", 9);
	/* §3.4.3: an empty body is CRLF in simple, nothing in relaxed;
	 * a body without its last CRLF gets one. */
	expect_body(AUTHN_DKIM_SIMPLE, UINT64_MAX, "", "\r\n", 2);
	expect_body(AUTHN_DKIM_SIMPLE, UINT64_MAX, "\r\n\r\n", "\r\n", 2);
	expect_body(AUTHN_DKIM_RELAXED, UINT64_MAX, "\r\n \r\n", "", 0);
	expect_body(AUTHN_DKIM_SIMPLE, UINT64_MAX, "a  ", "a  \r\n", 5);
	expect_body(AUTHN_DKIM_RELAXED, UINT64_MAX, "a  ", "a\r\n", 3);
	/* A bare CR or LF ends a line, as SMTP reads it. */
	expect_body(AUTHN_DKIM_RELAXED, UINT64_MAX, "a\rb\nc", "a\r\nb\r\nc\r\n",
	    9);
	/* Empty lines inside stay. */
	expect_body(AUTHN_DKIM_SIMPLE, UINT64_MAX, "a\r\n\r\n\r\nb\r\n\r\n",
	    "a\r\n\r\n\r\nb\r\n", 10);
}

static void
test_authn_dkim_body_length_limit(void **state)
{
	(void)state;
	/* l=: the sink gets the first l bytes, the length counts all. */
	expect_body(AUTHN_DKIM_RELAXED, 9, " C \r\nD \t E\r\ntail\r\n",
	    " C\r\nD E\r\n", 15);
	expect_body(AUTHN_DKIM_SIMPLE, 0, "abc\r\n", "", 5);
	expect_body(AUTHN_DKIM_SIMPLE, 4, "abc\r\n", "abc\r", 5);
}

static void
test_authn_dkim_header_relaxed(void **state)
{
	char *a, *b;

	(void)state;
	/* §3.4.5: "A: X" and "B : Y\t\r\n\tZ  " are "a:X" and "b:Y Z". */
	a = authn_dkim_header_relaxed("A: X", 4);
	b = authn_dkim_header_relaxed("B : Y\t\r\n\tZ  ", 12);
	assert_string_equal(a, "a:X");
	assert_string_equal(b, "b:Y Z");
	free(a);
	free(b);
	a = authn_dkim_header_relaxed("Subject:", 8);
	assert_string_equal(a, "subject:");
	free(a);
	/* A colon inside the value keeps the space after it (the queue's
	 * signer dropped it before 2026-12-07). */
	a = authn_dkim_header_relaxed("Subject:  Re:  hello", 20);
	assert_string_equal(a, "subject:Re: hello");
	free(a);
	a = authn_dkim_header_relaxed("h: a : b", 8);
	assert_string_equal(a, "h:a : b");
	free(a);
}

/* ---- Tag lists ------------------------------------------------------ */

static int
tags(const char *text, struct authn_dkim_tag *t, char *err)
{
	return authn_dkim_tags_parse(text, strlen(text), t,
	    AUTHN_DKIM_TAGS_MAX, err, 160);
}

static void
expect_tag(const struct authn_dkim_tag *t, size_t n, const char *name,
    const char *value)
{
	const struct authn_dkim_tag *x = authn_dkim_tag_find(t, n, name);

	assert_non_null(x);
	assert_int_equal(x->value_len, strlen(value));
	assert_memory_equal(x->value, value, x->value_len);
}

static void
test_authn_dkim_tags(void **state)
{
	struct authn_dkim_tag t[AUTHN_DKIM_TAGS_MAX];
	char err[160], many[1024];
	int n;

	(void)state;
	n = tags(" v=1; a = rsa-sha256 ;\r\n\tb=ab cd\r\n\t ef ; p=;", t, err);
	assert_int_equal(n, 4);
	expect_tag(t, 4, "v", "1");
	expect_tag(t, 4, "a", "rsa-sha256");
	expect_tag(t, 4, "b", "ab cd\r\n\t ef");
	expect_tag(t, 4, "p", "");
	assert_null(authn_dkim_tag_find(t, 4, "V"));	/* case matters */
	assert_int_equal(tags("", t, err), 0);
	assert_int_equal(tags("k=rsa", t, err), 1);
	assert_int_equal(tags("x_1=2;;", t, err), -1);	/* empty tag-spec */
	/* Errors of §3.2. */
	assert_int_equal(tags("v=1; v=2", t, err), -1);
	assert_non_null(strstr(err, "twice"));
	assert_int_equal(tags("1a=x", t, err), -1);
	assert_int_equal(tags("a x", t, err), -1);
	assert_int_equal(tags("a=\x01", t, err), -1);
	/* Bounded: one more tag than the table holds. */
	many[0] = '\0';
	for (int i = 0; i <= AUTHN_DKIM_TAGS_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
		    "t%d=x;", i);
	assert_int_equal(tags(many, t, err), -1);
	assert_non_null(strstr(err, "more than"));
}

/* ---- The verifier against the queue's signer ------------------------ */

struct table {
	const char *name;
	const char *txt;	/* NULL: NXDOMAIN; "": SERVFAIL */
};

static enum authn_dns_rc
table_query(void *arg, enum authn_dns_type type, const char *name,
    char ***rrs_out, size_t *n_out)
{
	const struct table *t = arg;

	assert_int_equal(type, AUTHN_DNS_TXT);
	*rrs_out = NULL;
	*n_out = 0;
	for (; t->name != NULL; t++) {
		if (strcmp(t->name, name) != 0)
			continue;
		if (t->txt == NULL)
			return AUTHN_DNS_NXDOMAIN;
		if (t->txt[0] == '\0')
			return AUTHN_DNS_FAIL;
		*rrs_out = xcalloc(2, sizeof(char *));
		(*rrs_out)[0] = xstrdup(t->txt);
		*n_out = 1;
		return AUTHN_DNS_OK;
	}
	return AUTHN_DNS_NXDOMAIN;
}

static const char header[] = "From: Alice <alice@a.test>\r\n"
    "To: bob@b.test\r\n"
    "Subject:  Re: the  plan\r\n";
static const char body[] = "Hello  there \r\n\r\n";

/* The verdict of the signed message sig + header(changed) + body(changed)
 * against key record rec. */
static struct authn_dkim_verdict
verify(const char *sig, const char *hdr, const char *bd, const char *rec)
{
	struct table t[] = { { "s1._domainkey.a.test", rec }, { NULL, NULL } };
	struct authn_dns dns = { table_query, t };
	struct authn_dkim_verdict v;
	char *h = xasprintf("%s%s\r\n", sig, hdr);
	struct authn_dkim *d = authn_dkim_new(h, strlen(h), 1700000000);

	assert_non_null(d);
	authn_dkim_body(d, bd, strlen(bd));
	authn_dkim_verify(d, &dns, &v);
	authn_dkim_free(&d);
	free(h);
	return v;
}

static void
signer_roundtrip(enum net_key_type type)
{
	char path[] = "/tmp/dkimkey.XXXXXX", err[256], *pub, *sig, *rec;
	struct queue_dkim_body b;
	struct authn_dkim_verdict v;
	unsigned char bh[32];
	struct net_key *key;
	int fd;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	assert_int_equal(net_key_generate(type, path, &pub, err, sizeof(err)),
	    0);
	key = net_key_load(path, err, sizeof(err));
	assert_non_null(key);
	queue_dkim_body_init(&b);
	queue_dkim_body_update(&b, body, strlen(body));
	queue_dkim_body_final(&b, bh);
	sig = queue_dkim_sign(header, strlen(header), bh, key, "a.test", "s1",
	    1700000000);
	assert_non_null(sig);
	rec = xasprintf("v=DKIM1; k=%s; p=%s", type == NET_KEY_ED25519 ?
	    "ed25519" : "rsa", pub);
	v = verify(sig, header, body, rec);
	assert_int_equal(v.n, 1);
	assert_string_equal(v.sigs[0].reason, "signature verified");
	assert_int_equal(v.sigs[0].result, AUTHN_DKIM_PASS);
	assert_string_equal(v.sigs[0].domain, "a.test");
	assert_string_equal(v.sigs[0].selector, "s1");
	assert_int_equal(strlen(v.sigs[0].b), 8);
	/* Relaxed: whitespace may change, words may not. */
	v = verify(sig, "From: Alice <alice@a.test>\r\nTo:   bob@b.test\r\n"
	    "Subject: Re: the plan\r\n", "Hello there\r\n", rec);
	assert_int_equal(v.sigs[0].result, AUTHN_DKIM_PASS);
	v = verify(sig, "From: Alice <alice@a.test>\r\nTo: bob@b.test\r\n"
	    "Subject: Re: the plan!\r\n", body, rec);
	assert_int_equal(v.sigs[0].result, AUTHN_DKIM_FAIL);
	v = verify(sig, header, "Hello there!\r\n", rec);
	assert_int_equal(v.sigs[0].result, AUTHN_DKIM_FAIL);
	assert_non_null(strstr(v.sigs[0].reason, "body hash"));
	free(rec);
	/* The key record decides. */
	v = verify(sig, header, body, "v=DKIM1; p=");
	assert_int_equal(v.sigs[0].result, AUTHN_DKIM_FAIL);
	assert_non_null(strstr(v.sigs[0].reason, "revoked"));
	v = verify(sig, header, body, NULL);
	assert_int_equal(v.sigs[0].result, AUTHN_DKIM_PERMERROR);
	v = verify(sig, header, body, "");
	assert_int_equal(v.sigs[0].result, AUTHN_DKIM_TEMPERROR);
	v = verify(sig, header, body, "v=DKIM2; p=abc");
	assert_int_equal(v.sigs[0].result, AUTHN_DKIM_PERMERROR);
	rec = xasprintf("v=DKIM1; k=%s; p=%s", type == NET_KEY_ED25519 ?
	    "rsa" : "ed25519", pub);
	v = verify(sig, header, body, rec);
	assert_int_equal(v.sigs[0].result, AUTHN_DKIM_FAIL);
	free(rec);
	free(sig);
	free(pub);
	net_key_free(&key);
	unlink(path);
}

static void
test_authn_dkim_verifies_the_queues_ed25519(void **state)
{
	(void)state;
	signer_roundtrip(NET_KEY_ED25519);
}

static void
test_authn_dkim_verifies_the_queues_rsa(void **state)
{
	(void)state;
	signer_roundtrip(NET_KEY_RSA);
}

static void
test_authn_dkim_signature_errors(void **state)
{
	static const char *const bad[] = {
		/* no v= */
		"DKIM-Signature: a=rsa-sha256; d=a.test; s=s; h=from; bh=; "
		"b=AAAA\r\n",
		/* rsa-sha1 (RFC 8301) */
		"DKIM-Signature: v=1; a=rsa-sha1; d=a.test; s=s; h=from; "
		"bh=AAAA; b=AAAA\r\n",
		/* h= without From */
		"DKIM-Signature: v=1; a=rsa-sha256; d=a.test; s=s; h=to; "
		"bh=AAAA; b=AAAA\r\n",
		/* i= outside d= */
		"DKIM-Signature: v=1; a=rsa-sha256; d=a.test; s=s; h=from; "
		"i=@b.test; bh=AAAA; b=AAAA\r\n",
		/* not base64 */
		"DKIM-Signature: v=1; a=rsa-sha256; d=a.test; s=s; h=from; "
		"bh=!!; b=AAAA\r\n",
		/* a tag twice */
		"DKIM-Signature: v=1; v=1; a=rsa-sha256; d=a.test; s=s; "
		"h=from; bh=AAAA; b=AAAA\r\n",
	};
	struct table t[] = { { NULL, NULL } };
	struct authn_dns dns = { table_query, t };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *h = xasprintf("%sFrom: a@a.test\r\n\r\n", bad[i]);
		struct authn_dkim *d = authn_dkim_new(h, strlen(h), 0);
		struct authn_dkim_verdict v;

		assert_non_null(d);
		authn_dkim_verify(d, &dns, &v);
		assert_int_equal(v.n, 1);
		assert_int_equal(v.sigs[0].result, AUTHN_DKIM_PERMERROR);
		authn_dkim_free(&d);
		free(h);
	}
	/* No signature: nothing to do. */
	assert_null(authn_dkim_new("From: a@a.test\r\n\r\n", 18, 0));
	assert_true(is_authn_dkim_signed("X: y\r\ndkim-signature : v=1\r\n",
	    28));
	assert_false(is_authn_dkim_signed("X: dkim-signature: y\r\n", 22));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_authn_dkim_body_rfc6376_example),
		cmocka_unit_test(test_authn_dkim_body_length_limit),
		cmocka_unit_test(test_authn_dkim_header_relaxed),
		cmocka_unit_test(test_authn_dkim_tags),
		cmocka_unit_test(test_authn_dkim_verifies_the_queues_ed25519),
		cmocka_unit_test(test_authn_dkim_verifies_the_queues_rsa),
		cmocka_unit_test(test_authn_dkim_signature_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
