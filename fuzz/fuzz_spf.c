/*
 * fuzz_spf: the SPF record parser and evaluator (authn_spf.c), the macro
 * expander (authn_spf_macro.c, RFC 7208 §7) and the removal of our
 * Authentication-Results fields from a header (authn_ar.c).
 *
 * Input: up to three fields separated by NUL bytes: an SPF record, a
 * macro-string, a header section. Missing fields are empty. The fake DNS
 * answers every TXT question with the record itself (so include: and
 * redirect= recurse into it until the limits stop them), every A/AAAA
 * with the client's address, MX with one host and PTR with one name.
 *
 * Checked: the check ends with one of the seven results; no more than 11
 * lookups and 3 void lookups were counted (the limit plus the one that
 * broke it); an explanation and a macro expansion are at most
 * AUTHN_SPF_EXPAND_MAX bytes; stripping never grows the header.
 *
 * fuzz-sources: src/authn/authn_spf.c src/authn/authn_spf_macro.c src/authn/authn_ar.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authn/authn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_spf: invariant broken: %s\n", what);
		abort();
	}
}

struct fake {
	const char *record;
	const char *ip;
	bool is_v6;
};

static enum authn_dns_rc
fake_query(void *arg, enum authn_dns_type type, const char *name,
    char ***rrs_out, size_t *n_out)
{
	struct fake *f = arg;
	const char *v;

	check(strlen(name) <= 253, "a name over 253 bytes was asked");
	switch (type) {
	case AUTHN_DNS_TXT:
		v = f->record;
		break;
	case AUTHN_DNS_A:
		v = f->is_v6 ? "192.0.2.1" : f->ip;
		break;
	case AUTHN_DNS_AAAA:
		v = f->is_v6 ? f->ip : "2001:db8::1";
		break;
	case AUTHN_DNS_MX:
		v = "10 mx.example.com";
		break;
	default:
		v = "mx.example.com";
		break;
	}
	if (name[0] == 'n')	/* some names do not exist */
		return AUTHN_DNS_NXDOMAIN;
	*rrs_out = calloc(1, sizeof(char *));
	(*rrs_out)[0] = strdup(v);
	*n_out = 1;
	return AUTHN_DNS_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 2), *fields[3];
	const char *p;
	size_t nf = 0;

	memcpy(buf, data, size);
	buf[size] = '\0';
	buf[size + 1] = '\0';
	p = buf;
	while (nf < 3) {
		fields[nf++] = (char *)p;
		p += strlen(p);
		if (p >= buf + size)
			break;
		p++;
	}
	while (nf < 3)
		fields[nf++] = buf + size;

	for (int fam = 0; fam < 2; fam++) {
		struct fake f = { fields[0], fam ? "2001:db8::5" : "192.0.2.5",
		    fam == 1 };
		struct authn_dns dns = { fake_query, &f };
		struct authn_spf_request req = {
			.ip = f.ip, .helo = "helo.example.org",
			.sender = "user+tag@example.com",
			.receiver = "mx.example.test", .now = 1,
		};
		struct authn_spf_outcome o;
		char err[160], *x;

		(void)authn_spf_record_check(fields[0], strlen(fields[0]), err,
		    sizeof(err));
		authn_spf_check_mailfrom(&dns, &req, &o);
		check(o.result <= AUTHN_SPF_PERMERROR, "result out of range");
		check(o.lookups <= AUTHN_SPF_LOOKUPS_MAX + 1, "lookups");
		check(o.voids <= AUTHN_SPF_VOID_MAX + 1, "void lookups");
		check(o.explanation == NULL ||
		    strlen(o.explanation) <= AUTHN_SPF_EXPAND_MAX,
		    "explanation too long");
		authn_spf_outcome_deinit(&o);
		for (int is_exp = 0; is_exp < 2; is_exp++) {
			x = authn_spf_macro_expand(&dns, &req, "example.com",
			    req.sender, fields[1], strlen(fields[1]),
			    is_exp == 1);
			check(x == NULL || strlen(x) <= AUTHN_SPF_EXPAND_MAX,
			    "expansion too long");
			free(x);
		}
	}
	{
		size_t len = strlen(fields[2]), removed;
		size_t n = authn_ar_strip(fields[2], len, "mx.example.test",
		    &removed);

		check(n <= len, "strip grew the header");
	}
	free(buf);
	return 0;
}
