/*
 * sieve_match: comparators (RFC 4790: i;octet, i;ascii-casemap,
 * i;ascii-numeric) and match types (RFC 5228 §2.7.1 :is, :contains,
 * :matches; RFC 5231 :value; the regex draft's :regex as POSIX ERE).
 *
 * :matches runs in O(value × key) steps: on a mismatch only the last '*'
 * takes one more character, which finds a match whenever one exists and
 * leaves every earlier '*' as short as possible, the captures RFC 5229
 * §3.2 asks for ("[*] *" on "[a] [b] c" gives "a" and "[b] c").
 */
#include <ctype.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "sieve/sieve_int.h"

static int
fold(int c, enum sv_cmp cmp)
{
	if (cmp == CMP_CASEMAP && c >= 'A' && c <= 'Z')
		return c + ('a' - 'A');
	return c;
}

/* Compares the numbers at the start of a and b (RFC 4790 §9.1.1). */
static int
numeric_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t ai = 0, bi = 0, ae, be;
	bool a_inf = alen == 0 || !isdigit((unsigned char)a[0]);
	bool b_inf = blen == 0 || !isdigit((unsigned char)b[0]);

	if (a_inf || b_inf)
		return a_inf == b_inf ? 0 : a_inf ? 1 : -1;
	while (ai + 1 < alen && a[ai] == '0' &&
	    isdigit((unsigned char)a[ai + 1]))
		ai++;
	while (bi + 1 < blen && b[bi] == '0' &&
	    isdigit((unsigned char)b[bi + 1]))
		bi++;
	for (ae = ai; ae < alen && isdigit((unsigned char)a[ae]); ae++)
		;
	for (be = bi; be < blen && isdigit((unsigned char)b[be]); be++)
		;
	if (ae - ai != be - bi)
		return ae - ai < be - bi ? -1 : 1;
	for (; ai < ae; ai++, bi++) {
		if (a[ai] != b[bi])
			return a[ai] < b[bi] ? -1 : 1;
	}
	return 0;
}

int
sv_compare(enum sv_cmp cmp, const char *a, size_t alen, const char *b,
    size_t blen)
{
	size_t i;

	if (cmp == CMP_NUMERIC)
		return numeric_cmp(a, alen, b, blen);
	for (i = 0; i < alen && i < blen; i++) {
		int x = fold((unsigned char)a[i], cmp);
		int y = fold((unsigned char)b[i], cmp);

		if (x != y)
			return x < y ? -1 : 1;
	}
	if (alen == blen)
		return 0;
	return alen < blen ? -1 : 1;
}

bool
sv_rel_holds(enum sv_rel rel, int c)
{
	switch (rel) {
	case REL_GT: return c > 0;
	case REL_GE: return c >= 0;
	case REL_LT: return c < 0;
	case REL_LE: return c <= 0;
	case REL_EQ: return c == 0;
	case REL_NE: return c != 0;
	default: return false;
	}
}

static bool
contains(enum sv_cmp cmp, const char *v, size_t vlen, const char *k,
    size_t klen, unsigned *steps)
{
	if (klen == 0)
		return true;
	for (size_t i = 0; i + klen <= vlen; i++) {
		size_t j;

		(*steps)++;
		for (j = 0; j < klen; j++) {
			if (fold((unsigned char)v[i + j], cmp) !=
			    fold((unsigned char)k[j], cmp))
				break;
		}
		if (j == klen)
			return true;
		if (*steps > SIEVE_MAX_STEPS)
			return false;
	}
	return false;
}

/* The length of the UTF-8 character at v (1 for a byte that starts none). */
static size_t
utf8_len(const char *v, size_t left)
{
	unsigned char c = (unsigned char)v[0];
	size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 :
	    c >= 0xc0 ? 2 : 1;

	if (n > left)
		return 1;
	for (size_t i = 1; i < n; i++) {
		if (((unsigned char)v[i] & 0xc0) != 0x80)
			return 1;
	}
	return n;
}

enum gtok { GT_CHAR, GT_ONE, GT_STAR };
struct glob_tok {
	enum gtok kind;
	char c;
	int cap;		/* capture number of a wildcard, 1-based */
};

/* :matches with '*', '?' and '\' (RFC 5228 §2.7.1). */
static bool
glob(enum sv_cmp cmp, const char *v, size_t vlen, const char *k,
    size_t klen, char **caps, unsigned *steps)
{
	struct glob_tok stack_toks[64], *t = stack_toks;
	size_t nt = 0, pi = 0, vi = 0;
	size_t cs[SV_MAX_CAPTURES], ce[SV_MAX_CAPTURES];
	long star = -1;
	size_t star_end = 0;
	int ncap = 0;
	bool ok = false;

	if (klen > ARRAY_LEN(stack_toks))
		t = xmalloc(klen * sizeof(*t));
	for (size_t i = 0; i < klen; i++) {
		if (k[i] == '\\' && i + 1 < klen) {
			t[nt].kind = GT_CHAR;
			t[nt++].c = k[++i];
		} else if (k[i] == '*') {
			/* "**" is one star capturing, the other empty */
			t[nt].kind = GT_STAR;
			t[nt++].cap = ++ncap;
		} else if (k[i] == '?') {
			t[nt].kind = GT_ONE;
			t[nt++].cap = ++ncap;
		} else {
			t[nt].kind = GT_CHAR;
			t[nt++].c = k[i];
		}
	}
	memset(cs, 0, sizeof(cs));
	memset(ce, 0, sizeof(ce));
	for (;;) {
		(*steps)++;
		if (*steps > SIEVE_MAX_STEPS)
			break;
		if (pi < nt) {
			struct glob_tok *g = &t[pi];

			if (g->kind == GT_STAR) {
				if (g->cap < SV_MAX_CAPTURES) {
					cs[g->cap] = vi;
					ce[g->cap] = vi;
				}
				star = (long)pi;
				star_end = vi;
				pi++;
				continue;
			}
			if (vi < vlen && g->kind == GT_ONE) {
				size_t n = utf8_len(v + vi, vlen - vi);

				if (g->cap < SV_MAX_CAPTURES) {
					cs[g->cap] = vi;
					ce[g->cap] = vi + n;
				}
				vi += n;
				pi++;
				continue;
			}
			if (vi < vlen && fold((unsigned char)g->c, cmp) ==
			    fold((unsigned char)v[vi], cmp)) {
				vi++;
				pi++;
				continue;
			}
		} else if (vi == vlen) {
			ok = true;
			break;
		}
		if (star < 0 || star_end >= vlen)
			break;
		star_end += utf8_len(v + star_end, vlen - star_end);
		if (t[star].cap < SV_MAX_CAPTURES)
			ce[t[star].cap] = star_end;
		vi = star_end;
		pi = (size_t)star + 1;
	}
	if (ok && caps != NULL) {
		caps[0] = xstrndup(v, vlen);
		for (int i = 1; i < SV_MAX_CAPTURES; i++)
			caps[i] = i <= ncap ? xstrndup(v + cs[i], ce[i] - cs[i])
			    : xstrdup("");
	}
	if (t != stack_toks)
		free(t);
	return ok;
}

/* Repetitions a regex may multiply out to: glibc builds an automaton
 * with a state per repeated copy, so "(a{255}){255}" of 14 bytes takes
 * tens of MB and seconds. The product of every bound counts, nested or
 * not (a bound over the limit alone is refused too). */
#define SV_MAX_REGEX_REPEAT 2000

static bool
is_regex_small(const char *re)
{
	unsigned long product = 1;

	for (const char *p = re; *p != '\0'; p++) {
		unsigned long a = 0, b = 0;
		const char *q;

		if (*p == '\\' && p[1] != '\0') {
			p++;
			continue;
		}
		if (*p != '{')
			continue;
		for (q = p + 1; isdigit((unsigned char)*q) && a < 100000; q++)
			a = a * 10 + (unsigned long)(*q - '0');
		b = a;
		if (*q == ',') {
			b = 0;
			for (q++; isdigit((unsigned char)*q) && b < 100000; q++)
				b = b * 10 + (unsigned long)(*q - '0');
			if (b < a)
				b = a;
		}
		if (b == 0)
			b = 1;
		product *= b;
		if (product > SV_MAX_REGEX_REPEAT)
			return false;
	}
	return true;
}

void *
sv_regex_compile(const char *re, bool icase, const char **why_out)
{
	static __thread char why[128];
	regex_t *rx;
	int rc;

	if (strlen(re) > SIEVE_MAX_REGEX) {
		*why_out = "too long";
		return NULL;
	}
	if (!is_regex_small(re)) {
		*why_out = "too many repetitions";
		return NULL;
	}
	rx = xmalloc(sizeof(*rx));
	rc = regcomp(rx, re, REG_EXTENDED | (icase ? REG_ICASE : 0));
	if (rc != 0) {
		regerror(rc, rx, why, sizeof(why));
		free(rx);
		*why_out = why;
		return NULL;
	}
	return rx;
}

void
sv_regex_free(void *re)
{
	if (re != NULL) {
		regfree(re);
		free(re);
	}
}

/* Runs a :regex match: with the compiled key re, else compiling k (a key
 * holding variables) for this match only. */
static int
regex_match(enum sv_cmp cmp, const char *v, const char *k, const void *re,
    char **caps, const char **err)
{
	const regex_t *rx = re;
	regmatch_t m[SV_MAX_CAPTURES];
	void *own = NULL;
	int rc;

	if (rx == NULL) {
		own = sv_regex_compile(k, cmp == CMP_CASEMAP, err);
		if (own == NULL)
			return -1;
		rx = own;
	}
	rc = regexec(rx, v, caps != NULL ? SV_MAX_CAPTURES : 0,
	    caps != NULL ? m : NULL, 0);
	if (rc == 0 && caps != NULL) {
		for (int i = 0; i < SV_MAX_CAPTURES; i++) {
			if (i <= (int)rx->re_nsub && m[i].rm_so >= 0)
				caps[i] = xstrndup(v + m[i].rm_so,
				    (size_t)(m[i].rm_eo - m[i].rm_so));
			else
				caps[i] = xstrdup("");
		}
	}
	sv_regex_free(own);
	return rc == 0;
}

int
sv_match(const struct sv_node *n, const char *value, size_t vlen,
    const char *key, size_t klen, const void *re, char **caps,
    unsigned *steps, const char **err)
{
	enum sv_cmp cmp = (enum sv_cmp)n->cmp;

	(*steps)++;
	switch (n->match) {
	case G_CONTAINS:
		return contains(cmp, value, vlen, key, klen, steps);
	case G_MATCHES:
		return glob(cmp, value, vlen, key, klen, caps, steps);
	case G_REGEX:
		*steps += (unsigned)(vlen / 16 + 1);
		return regex_match(cmp, value, key, re, caps, err);
	case G_VALUE:
		return sv_rel_holds((enum sv_rel)n->rel,
		    sv_compare(cmp, value, vlen, key, klen));
	case G_IS:
	default:
		return sv_compare(cmp, value, vlen, key, klen) == 0;
	}
}
