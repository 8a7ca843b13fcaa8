/*
 * fuzz_dmarc: the DMARC record parser and evaluator (authn_dmarc.c), and
 * the Public Suffix List parser and organizational domain (authn_psl.c).
 *
 * Input: up to four fields separated by NUL bytes: a DMARC record, a
 * Public Suffix List text, an author domain, a DKIM d= domain. Missing
 * fields are empty. The fake DNS answers every TXT question with the
 * record (so the tree walk stops at the author domain, or walks on when
 * the record is not a DMARC one) and says that names starting with "n"
 * do not exist.
 *
 * Checked: the result is one of the five; the walk asked at most
 * AUTHN_DMARC_WALK_MAX TXT questions (and one A); pct is at most 100 and
 * no more than AUTHN_DMARC_URIS_MAX URIs were kept, each NUL-terminated
 * within its bound; a pass has an alignment and a disposition of none;
 * an organizational domain is a suffix of its domain.
 *
 * fuzz-sources: src/authn/authn_dmarc.c src/authn/authn_psl.c src/authn/authn_spf.c src/authn/authn_spf_macro.c
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
		fprintf(stderr, "fuzz_dmarc: invariant broken: %s\n", what);
		abort();
	}
}

struct fake {
	const char *record;
	unsigned txt, a;
};

static enum authn_dns_rc
fake_query(void *arg, enum authn_dns_type type, const char *name,
    char ***rrs_out, size_t *n_out)
{
	struct fake *f = arg;

	check(strlen(name) <= 253 + 7, "a name over 260 bytes was asked");
	if (type == AUTHN_DNS_TXT)
		f->txt++;
	else
		f->a++;
	if (type != AUTHN_DNS_TXT)
		return name[0] == 'n' ? AUTHN_DNS_NXDOMAIN : AUTHN_DNS_NODATA;
	*rrs_out = calloc(1, sizeof(char *));
	(*rrs_out)[0] = strdup(f->record);
	*n_out = 1;
	return AUTHN_DNS_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 2), *fields[4];
	const char *p;
	size_t nf = 0;
	struct authn_dmarc_record rec;
	struct authn_psl *psl;
	char err[160], org[256];

	memcpy(buf, data, size);
	buf[size] = '\0';
	buf[size + 1] = '\0';
	p = buf;
	while (nf < 4) {
		fields[nf++] = (char *)p;
		p += strlen(p);
		if (p >= buf + size)
			break;
		p++;
	}
	while (nf < 4)
		fields[nf++] = buf + size;

	if (authn_dmarc_record_parse(fields[0], strlen(fields[0]), &rec, err,
	    sizeof(err)) == 0) {
		check(rec.pct <= 100, "pct over 100");
		check(rec.nrua <= AUTHN_DMARC_URIS_MAX &&
		    rec.nruf <= AUTHN_DMARC_URIS_MAX, "too many URIs");
		for (size_t i = 0; i < rec.nrua; i++)
			check(strlen(rec.rua[i]) <= AUTHN_DMARC_URI_MAX,
			    "rua URI too long");
		check(rec.p != AUTHN_DMARC_POLICY_UNSET, "p unset");
	}

	psl = authn_psl_parse(fields[1], strlen(fields[1]));
	if (authn_psl_org_domain(psl, fields[2], org, sizeof(org)) == 0) {
		size_t n = strlen(fields[2]), m = strlen(org);

		if (n > 0 && fields[2][n - 1] == '.')
			n--;
		check(m <= n, "organizational domain longer than its domain");
	}

	for (int sample = 0; sample < 100; sample += 99) {
		struct fake f = { fields[0], 0, 0 };
		struct authn_dns dns = { fake_query, &f };
		struct authn_dmarc_dkim k = { fields[3], true, false };
		struct authn_dmarc_request req = {
			.from_domain = fields[2],
			.spf = sample ? AUTHN_SPF_PASS : AUTHN_SPF_FAIL,
			.spf_domain = fields[3],
			.dkim = &k, .ndkim = 1, .psl = psl,
			.sample = (unsigned)sample,
		};
		struct authn_dmarc_outcome o;
		char c[300];

		authn_dmarc_check(&dns, &req, &o);
		check(o.result <= AUTHN_DMARC_PERMERROR, "result out of range");
		check(f.txt <= AUTHN_DMARC_WALK_MAX && f.a <= 1,
		    "too many questions");
		check(o.result != AUTHN_DMARC_PASS ||
		    ((o.is_spf_aligned || o.is_dkim_aligned) &&
		    o.disposition == AUTHN_DMARC_POLICY_NONE), "bad pass");
		check(o.disposition <= o.policy || o.disposition ==
		    AUTHN_DMARC_POLICY_NONE, "disposition above the policy");
		authn_dmarc_comment(&o, c, sizeof(c));
	}
	authn_psl_free(&psl);
	free(buf);
	return 0;
}
