/*
 * authn_psl: the Public Suffix List (publicsuffix.org; Debian's
 * `publicsuffix` package installs it as
 * /usr/share/publicsuffix/public_suffix_list.dat) and the organizational
 * domain of RFC 7489 §3.2 that DMARC's relaxed alignment compares.
 *
 * The file is trusted (the operator's, from a package) but still read
 * within bounds: AUTHN_PSL_FILE_MAX bytes, AUTHN_PSL_RULES_MAX rules, a
 * rule of at most 253 bytes; a line past the bounds is skipped. Rules go
 * into one open-addressing hash table keyed by the rule's name without
 * its "*." or "!" (a flag says which kinds the name carries), so that a
 * lookup costs one probe per label of the domain asked about (at most
 * 127), whatever the size of the list.
 *
 * The algorithm is the list's own (publicsuffix.org/list/, "Algorithm"):
 * the matching rule with the most labels prevails, an exception rule
 * ("!www.ck") prevails over all and its public suffix is the rule less
 * its leftmost label, and the implicit rule "*" makes an unlisted TLD a
 * public suffix. Both the ICANN and the PRIVATE sections count, as in
 * OpenDMARC.
 */
#include "authn/authn_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/util.h"

enum {
	PSL_NORMAL = 1,		/* "name" */
	PSL_WILDCARD = 2,	/* "*.name": every child of name */
	PSL_EXCEPTION = 4,	/* "!name" */
};

struct psl_slot {
	uint32_t off;		/* into names; 0: empty (names[0] is unused) */
	uint32_t hash;
	uint8_t kinds;
};

struct authn_psl {
	char *names;		/* NUL-terminated names, one after another */
	size_t names_len, names_cap;
	struct psl_slot *slots;
	size_t nslots;		/* a power of two, at least twice the rules */
	size_t nrules;
};

static uint32_t
psl_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

/* The slot of name (n bytes, lower case), empty or holding it. */
static struct psl_slot *
psl_slot_find(const struct authn_psl *p, const char *name, size_t n,
    uint32_t h)
{
	size_t mask = p->nslots - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct psl_slot *s = &p->slots[i];

		if (s->off == 0)
			return s;
		if (s->hash == h && strncmp(p->names + s->off, name, n) == 0 &&
		    p->names[s->off + n] == '\0')
			return s;
	}
}

static void
psl_add(struct authn_psl *p, const char *name, size_t n, uint8_t kind)
{
	uint32_t h = psl_hash(name, n);
	struct psl_slot *s = psl_slot_find(p, name, n, h);

	if (s->off != 0) {
		s->kinds |= kind;
		return;
	}
	if (p->names_len + n + 1 > p->names_cap) {
		p->names_cap = (p->names_len + n + 1) * 2;
		p->names = xrealloc(p->names, p->names_cap);
	}
	memcpy(p->names + p->names_len, name, n);
	p->names[p->names_len + n] = '\0';
	s->off = (uint32_t)p->names_len;
	s->hash = h;
	s->kinds = kind;
	p->names_len += n + 1;
	p->nrules++;
}

/* One line of the file: the rule is its first word (the format's own
 * rule: a rule ends at the first white space), "//" starts a comment. */
static void
psl_line(struct authn_psl *p, const char *line, size_t len)
{
	char rule[AUTHN_DOMAIN_MAX + 1];
	size_t n = 0, i = 0;
	uint8_t kind = PSL_NORMAL;

	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i + 1 < len && line[i] == '/' && line[i + 1] == '/')
		return;
	if (i < len && line[i] == '!') {
		kind = PSL_EXCEPTION;
		i++;
	} else if (i + 1 < len && line[i] == '*' && line[i + 1] == '.') {
		kind = PSL_WILDCARD;
		i += 2;
	}
	for (; i < len && !isspace((unsigned char)line[i]); i++) {
		if (n == AUTHN_DOMAIN_MAX)
			return;
		rule[n++] = (char)tolower((unsigned char)line[i]);
	}
	if (n == 0 || rule[0] == '.' || rule[n - 1] == '.' ||
	    p->nrules >= AUTHN_PSL_RULES_MAX)
		return;
	psl_add(p, rule, n, kind);
}

struct authn_psl *
authn_psl_parse(const char *text, size_t len)
{
	struct authn_psl *p = xcalloc(1, sizeof(*p));
	size_t lines = 1;

	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	if (lines > AUTHN_PSL_RULES_MAX)
		lines = AUTHN_PSL_RULES_MAX;
	/* At most half full: probes stay short. */
	p->nslots = 16;
	while (p->nslots < 2 * lines)
		p->nslots *= 2;
	p->slots = xcalloc(p->nslots, sizeof(*p->slots));
	p->names_cap = 4096;
	p->names = xmalloc(p->names_cap);
	p->names[0] = '\0';
	p->names_len = 1;
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - text) : len;

		psl_line(p, text + i, end - i);
		i = end + 1;
	}
	return p;
}

struct authn_psl *
authn_psl_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	struct authn_psl *p;
	struct stat st;
	char *text;
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > AUTHN_PSL_FILE_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %d "
		    "bytes", path, AUTHN_PSL_FILE_MAX);
		fclose(f);
		return NULL;
	}
	text = xmalloc((size_t)st.st_size + 1);
	n = fread(text, 1, (size_t)st.st_size, f);
	fclose(f);
	p = authn_psl_parse(text, n);
	free(text);
	if (p->nrules == 0) {
		snprintf(err, errlen, "%s: no rules", path);
		authn_psl_free(&p);
		return NULL;
	}
	return p;
}

void
authn_psl_free(struct authn_psl **pp)
{
	struct authn_psl *p = *pp;

	if (p == NULL)
		return;
	free(p->names);
	free(p->slots);
	free(p);
	*pp = NULL;
}

size_t
authn_psl_rules(const struct authn_psl *p)
{
	return p != NULL ? p->nrules : 0;
}

static uint8_t
psl_kinds(const struct authn_psl *p, const char *name, size_t n)
{
	struct psl_slot *s = psl_slot_find(p, name, n, psl_hash(name, n));

	return s->off != 0 ? s->kinds : 0;
}

/* Where the public suffix of d (lower case, no trailing dot, n bytes)
 * starts; n when d is malformed. */
static size_t
psl_suffix_start(const struct authn_psl *p, const char *d, size_t n)
{
	size_t starts[AUTHN_DOMAIN_MAX / 2 + 2];
	size_t nlabels = 0, best = SIZE_MAX;

	/* starts[i]: where the i-th label from the left begins. */
	starts[nlabels++] = 0;
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '.') {
			if (i + 1 >= n || nlabels == sizeof(starts) /
			    sizeof(starts[0]))
				return n;
			starts[nlabels++] = i + 1;
		}
	}
	/* From the longest candidate suffix (the whole name) to the
	 * shortest (the TLD): the first match has the most labels. */
	for (size_t k = 0; k < nlabels; k++) {
		const char *s = d + starts[k];
		size_t sn = n - starts[k];
		uint8_t kinds = p != NULL ? psl_kinds(p, s, sn) : 0;

		if (kinds & PSL_EXCEPTION) {
			/* The exception prevails: the suffix is the rule
			 * less its leftmost label. */
			return k + 1 < nlabels ? starts[k + 1] : n;
		}
		if (best == SIZE_MAX && (kinds & PSL_NORMAL))
			best = starts[k];
		if (best == SIZE_MAX && k + 1 < nlabels && p != NULL &&
		    (psl_kinds(p, d + starts[k + 1], n - starts[k + 1]) &
		    PSL_WILDCARD))
			best = starts[k];
	}
	/* The implicit rule "*": the TLD. */
	return best != SIZE_MAX ? best : starts[nlabels - 1];
}

int
authn_psl_org_domain(const struct authn_psl *p, const char *domain,
    char *out, size_t outlen)
{
	char d[AUTHN_DOMAIN_MAX + 1];
	size_t n = strlen(domain), start;

	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (n == 0 || n > AUTHN_DOMAIN_MAX || outlen <= n)
		return -1;
	for (size_t i = 0; i < n; i++)
		d[i] = (char)tolower((unsigned char)domain[i]);
	d[n] = '\0';
	if (d[0] == '.' || strstr(d, "..") != NULL)
		return -1;
	start = psl_suffix_start(p, d, n);
	if (start >= n)
		return -1;
	/* §3.2 step 4: the suffix and one label more; a name that is a
	 * public suffix itself is its own organizational domain. */
	if (start > 0) {
		start--;	/* the dot */
		while (start > 0 && d[start - 1] != '.')
			start--;
	}
	memcpy(out, d + start, n - start + 1);
	return 0;
}
