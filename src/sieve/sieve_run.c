/*
 * sieve_run: runs a compiled program on one message (RFC 5228 §2.10):
 * tests, actions and their interactions (implicit keep, duplicates,
 * conflicts), variables (RFC 5229), the internal flags of imap4flags
 * (RFC 5232), header edits (RFC 5293) and included scripts (RFC 6609).
 * Every command, test and match step counts against SIEVE_MAX_STEPS; a
 * run that fails leaves only the implicit keep and says why.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "sieve/sieve_int.h"

/* Bytes a string may grow to when its variables are substituted. */
#define SV_MAX_EXPANDED (64u << 10)

struct sv_var {
	char *name;
	char *value;
};
struct sv_scope {
	struct sv_var *v;
	size_t n;
};

/* One script being run: its local variables and the names it declared
 * global. */
struct sv_frame {
	const struct sv_script *script;
	struct sv_scope local;
	char **globals;
	size_t nglobals;
};

struct sv_run {
	const struct sieve_program *prog;
	const struct sieve_input *in;
	const struct sieve_callbacks *cb;
	struct sieve_result *res;
	struct sv_msg msg;
	struct sv_scope globals;
	struct sv_frame *frame;
	char *caps[SV_MAX_CAPTURES];
	char **flags;		/* the internal variable of imap4flags */
	size_t nflags;
	bool is_implicit_keep;
	bool is_failed;
	unsigned redirects;
	unsigned edits;
	unsigned char *once_done;
	unsigned depth;
};

enum flow { FLOW_NEXT, FLOW_STOP, FLOW_RETURN, FLOW_ERROR };

static void
run_fail(struct sv_run *r, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
run_fail(struct sv_run *r, unsigned line, const char *fmt, ...)
{
	va_list ap;
	char buf[300];

	if (r->is_failed)
		return;
	r->is_failed = true;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	r->res->error = xstrdup(buf);
	r->res->error_line = line;
}

static bool
step(struct sv_run *r, unsigned line)
{
	if (++r->res->steps > SIEVE_MAX_STEPS) {
		run_fail(r, line, "the script used too much CPU (more than "
		    "%u steps)", SIEVE_MAX_STEPS);
		return false;
	}
	return true;
}

static bool
has_ext(const struct sv_run *r, enum sv_ext e)
{
	return (r->frame->script->exts & (1ull << e)) != 0;
}

/* ---- Variables --------------------------------------------------------- */

static struct sv_var *
scope_find(struct sv_scope *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->n; i++) {
		if (strlen(s->v[i].name) == len &&
		    strncasecmp(s->v[i].name, name, len) == 0)
			return &s->v[i];
	}
	return NULL;
}

static struct sv_scope *
scope_of(struct sv_run *r, const char *name, size_t len)
{
	for (size_t i = 0; i < r->frame->nglobals; i++) {
		if (strlen(r->frame->globals[i]) == len &&
		    strncasecmp(r->frame->globals[i], name, len) == 0)
			return &r->globals;
	}
	return &r->frame->local;
}

static const char *
var_get(struct sv_run *r, const char *name, size_t len)
{
	struct sv_var *v = scope_find(scope_of(r, name, len), name, len);

	return v != NULL ? v->value : "";
}

static bool
var_set(struct sv_run *r, const char *name, char *value, unsigned line)
{
	struct sv_scope *s = scope_of(r, name, strlen(name));
	struct sv_var *v = scope_find(s, name, strlen(name));

	if (v == NULL) {
		if (s->n >= SIEVE_MAX_VARIABLES) {
			free(value);
			run_fail(r, line, "too many variables");
			return false;
		}
		s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
		v = &s->v[s->n++];
		v->name = xstrdup(name);
		v->value = NULL;
	}
	free(v->value);
	v->value = value;
	return true;
}

static void
scope_free(struct sv_scope *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].name);
		free(s->v[i].value);
	}
	free(s->v);
	memset(s, 0, sizeof(*s));
}

struct dyn {
	char *s;
	size_t len, cap;
};

static void
dyn_add(struct dyn *d, const char *s, size_t n)
{
	if (d->len + n + 1 > d->cap) {
		d->cap = (d->len + n + 1) * 2;
		d->s = xrealloc(d->s, d->cap);
	}
	memcpy(d->s + d->len, s, n);
	d->len += n;
	d->s[d->len] = '\0';
}

/* The string with its variables substituted (RFC 5229 §3): a new string. */
static char *
expand(struct sv_run *r, const struct sv_str *str)
{
	struct dyn d = { NULL, 0, 0 };
	const char *s = str->s;
	size_t n = str->len, i = 0;

	dyn_add(&d, "", 0);
	if (!str->has_var) {
		dyn_add(&d, s, n);
		return d.s;
	}
	while (i < n) {
		size_t j, k;

		if (s[i] != '$' || i + 1 >= n || s[i + 1] != '{') {
			dyn_add(&d, s + i, 1);
			i++;
			continue;
		}
		j = i + 2;
		k = j;
		if (k < n && isdigit((unsigned char)s[k])) {
			while (k < n && isdigit((unsigned char)s[k]))
				k++;
		} else {
			/* identifier, possibly namespaced ("a.b": we have
			 * no namespaces, so it is left as is) */
			while (k < n && (isalnum((unsigned char)s[k]) ||
			    s[k] == '_'))
				k++;
			if (k > j && isdigit((unsigned char)s[j]))
				k = j;
		}
		if (k == j || k >= n || s[k] != '}') {
			dyn_add(&d, s + i, 1);
			i++;
			continue;
		}
		if (isdigit((unsigned char)s[j])) {
			unsigned long num = 0;

			for (size_t q = j; q < k && num < 100; q++)
				num = num * 10 + (unsigned long)(s[q] - '0');
			if (num < SV_MAX_CAPTURES && r->caps[num] != NULL)
				dyn_add(&d, r->caps[num], strlen(r->caps[num]));
		} else {
			const char *v = var_get(r, s + j, k - j);

			dyn_add(&d, v, strlen(v));
		}
		i = k + 1;
		if (d.len > SV_MAX_EXPANDED)
			break;
	}
	return d.s;
}

static void
caps_set(struct sv_run *r, char **caps)
{
	for (int i = 0; i < SV_MAX_CAPTURES; i++) {
		free(r->caps[i]);
		r->caps[i] = caps[i];
		caps[i] = NULL;
	}
}

static void
caps_free(char **caps)
{
	for (int i = 0; i < SV_MAX_CAPTURES; i++) {
		free(caps[i]);
		caps[i] = NULL;
	}
}

/* ---- Matching values against keys -------------------------------------- */

/* Matches each of the n values against each key of keys by n's match
 * type; :count compares how many values there are. Returns 1, 0, or -1
 * after a failure. */
static int
match_values(struct sv_run *r, const struct sv_node *n, char **vals,
    size_t nvals, const struct sv_list *keys)
{
	bool want_caps = (n->match == G_MATCHES || n->match == G_REGEX) &&
	    has_ext(r, EXT_VARIABLES);
	char *caps[SV_MAX_CAPTURES] = { 0 };

	if (n->match == G_COUNT) {
		char count[32];

		snprintf(count, sizeof(count), "%zu", nvals);
		for (size_t k = 0; k < keys->n; k++) {
			char *key = expand(r, &keys->v[k]);
			bool ok = sv_rel_holds((enum sv_rel)n->rel,
			    sv_compare((enum sv_cmp)n->cmp, count,
			    strlen(count), key, strlen(key)));

			free(key);
			if (ok)
				return 1;
		}
		return 0;
	}
	for (size_t v = 0; v < nvals; v++) {
		for (size_t k = 0; k < keys->n; k++) {
			char *key = expand(r, &keys->v[k]);
			const char *err = NULL;
			int m = sv_match(n, vals[v], strlen(vals[v]), key,
			    strlen(key), keys->v[k].re,
			    want_caps ? caps : NULL, &r->res->steps, &err);

			free(key);
			if (r->res->steps > SIEVE_MAX_STEPS) {
				caps_free(caps);
				step(r, n->line);
				return -1;
			}
			if (m < 0) {
				run_fail(r, n->line, "%s", err);
				return -1;
			}
			if (m > 0) {
				if (want_caps)
					caps_set(r, caps);
				return 1;
			}
		}
	}
	return 0;
}

struct vals {
	char **v;
	size_t n;
};

static void
vals_add(struct vals *vs, char *s)
{
	vs->v = xrealloc(vs->v, (vs->n + 1) * sizeof(*vs->v));
	vs->v[vs->n++] = s;
}

static void
vals_free(struct vals *vs)
{
	for (size_t i = 0; i < vs->n; i++)
		free(vs->v[i]);
	free(vs->v);
	memset(vs, 0, sizeof(*vs));
}

/* The fields called name, in order; with :index only the one it names
 * (RFC 5260 §6: counted from the end with :last). */
static size_t
fields_named(struct sv_run *r, const struct sv_node *n, const char *name,
    const struct sv_field **out, size_t max)
{
	size_t k = 0;

	for (size_t i = 0; i < r->msg.nf && k < max; i++) {
		if (strcasecmp(r->msg.f[i].name, name) == 0)
			out[k++] = &r->msg.f[i];
	}
	if (sv_has(n, G_INDEX) && (n->id == T_HEADER || n->id == T_ADDRESS ||
	    n->id == T_DATE)) {
		size_t idx = (size_t)n->num;

		if (idx == 0 || idx > k)
			return 0;
		out[0] = out[sv_has(n, G_LAST) ? k - idx : idx - 1];
		return 1;
	}
	return k;
}

#define SV_MAX_FIELDS_TESTED 1000

static void
address_values(const struct sv_node *n, struct sv_addr *a, size_t na,
    struct vals *vs)
{
	for (size_t i = 0; i < na; i++) {
		const char *local = a[i].local;
		const char *plus;

		switch (n->part) {
		case G_LOCALPART:
			vals_add(vs, xstrdup(local));
			break;
		case G_DOMAIN:
			vals_add(vs, xstrdup(a[i].domain != NULL ?
			    a[i].domain : ""));
			break;
		case G_USER:
			plus = strchr(local, '+');
			vals_add(vs, plus != NULL ? xstrndup(local,
			    (size_t)(plus - local)) : xstrdup(local));
			break;
		case G_DETAIL:
			plus = strchr(local, '+');
			if (plus != NULL)
				vals_add(vs, xstrdup(plus + 1));
			break;
		default:
			vals_add(vs, xstrdup(a[i].all));
			break;
		}
	}
}

/* Splits a flag list into single flags (RFC 5232 §3: space-separated). */
static void
flags_split(const char *s, char ***flags, size_t *n)
{
	while (*s != '\0') {
		const char *e;
		bool seen = false;

		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			s++;
		if (*s == '\0')
			break;
		for (e = s; *e != '\0' && *e != ' ' && *e != '\t' &&
		    *e != '\r' && *e != '\n'; e++)
			;
		for (size_t i = 0; i < *n; i++) {
			if (strlen((*flags)[i]) == (size_t)(e - s) &&
			    strncasecmp((*flags)[i], s, (size_t)(e - s)) == 0)
				seen = true;
		}
		if (!seen && *n < 256) {
			*flags = xrealloc(*flags, (*n + 1) * sizeof(**flags));
			(*flags)[(*n)++] = xstrndup(s, (size_t)(e - s));
		}
		s = e;
	}
}

static void
flags_free(char **flags, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(flags[i]);
	free(flags);
}

static char *
flags_join(char **flags, size_t n)
{
	struct dyn d = { NULL, 0, 0 };

	dyn_add(&d, "", 0);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			dyn_add(&d, " ", 1);
		dyn_add(&d, flags[i], strlen(flags[i]));
	}
	return d.s;
}

/* ---- Tests ------------------------------------------------------------- */

static struct sieve_action *action_new(struct sv_run *r,
    enum sieve_action_type type, unsigned line);

static int eval(struct sv_run *r, const struct sv_node *n);

static int
test_header_like(struct sv_run *r, const struct sv_node *n)
{
	const struct sv_list *names = &n->pos[0], *keys = &n->pos[1];
	const struct sv_field *f[SV_MAX_FIELDS_TESTED];
	struct vals vs = { NULL, 0 };
	int rc;

	for (size_t i = 0; i < names->n; i++) {
		char *name = expand(r, &names->v[i]);
		size_t nf = fields_named(r, n, name, f, ARRAY_LEN(f));

		free(name);
		for (size_t j = 0; j < nf; j++) {
			if (n->id == T_HEADER) {
				vals_add(&vs, sv_field_value(f[j], true));
			} else {
				char *v = sv_field_value(f[j], false);
				struct sv_addr *a;
				size_t na = sv_addrs_parse(v, &a);

				address_values(n, a, na, &vs);
				sv_addrs_free(a, na);
				free(v);
			}
		}
	}
	rc = match_values(r, n, vs.v, vs.n, keys);
	vals_free(&vs);
	return rc;
}

static int
test_envelope(struct sv_run *r, const struct sv_node *n)
{
	struct vals vs = { NULL, 0 };
	int rc;

	for (size_t i = 0; i < n->pos[0].n; i++) {
		char *part = expand(r, &n->pos[0].v[i]);
		const char *v = NULL;

		if (strcasecmp(part, "from") == 0)
			v = r->in->env_from != NULL ? r->in->env_from : "";
		else if (strcasecmp(part, "to") == 0)
			v = r->in->env_to;
		else if (strcasecmp(part, "auth") == 0)
			v = r->in->env_auth;
		free(part);
		if (v == NULL)
			continue;
		if (*v == '\0') {
			/* RFC 5228 §5.4: the null reverse-path is the empty
			 * string whatever the address part */
			if (n->part != G_DETAIL)
				vals_add(&vs, xstrdup(""));
			continue;
		}
		{
			struct sv_addr *a;
			size_t na = sv_addrs_parse(v, &a);

			address_values(n, a, na, &vs);
			sv_addrs_free(a, na);
		}
	}
	rc = match_values(r, n, vs.v, vs.n, &n->pos[1]);
	vals_free(&vs);
	return rc;
}

static int
test_exists(struct sv_run *r, const struct sv_node *n)
{
	for (size_t i = 0; i < n->pos[0].n; i++) {
		char *name = expand(r, &n->pos[0].v[i]);
		bool found = false;

		for (size_t j = 0; j < r->msg.nf && !found; j++)
			found = strcasecmp(r->msg.f[j].name, name) == 0;
		free(name);
		if (!found)
			return 0;
	}
	return 1;
}

static int
test_string(struct sv_run *r, const struct sv_node *n)
{
	struct vals vs = { NULL, 0 };
	int rc;

	for (size_t i = 0; i < n->pos[0].n; i++) {
		char *v = expand(r, &n->pos[0].v[i]);

		/* RFC 5229 §5: :count counts the non-empty strings */
		if (n->match == G_COUNT && *v == '\0')
			free(v);
		else
			vals_add(&vs, v);
	}
	rc = match_values(r, n, vs.v, vs.n, &n->pos[1]);
	vals_free(&vs);
	return rc;
}

static int
test_hasflag(struct sv_run *r, const struct sv_node *n)
{
	struct vals vs = { NULL, 0 };
	char **fl = NULL;
	size_t nfl = 0;
	int rc;

	if (n->npos == 2) {
		for (size_t i = 0; i < n->pos[0].n; i++) {
			char *name = expand(r, &n->pos[0].v[i]);

			flags_split(var_get(r, name, strlen(name)), &fl, &nfl);
			free(name);
		}
	} else {
		for (size_t i = 0; i < r->nflags; i++)
			flags_split(r->flags[i], &fl, &nfl);
	}
	for (size_t i = 0; i < nfl; i++)
		vals_add(&vs, fl[i]);
	free(fl);
	rc = match_values(r, n, vs.v, vs.n, &n->pos[n->npos - 1]);
	vals_free(&vs);
	return rc;
}

static int
test_body(struct sv_run *r, const struct sv_node *n)
{
	struct sv_body b;
	struct sv_list types = { NULL, 0 };
	int rc;

	if (!step(r, n->line))
		return -1;
	if (sv_has(n, G_CONTENT)) {
		types.n = n->tagval[V_CONTENT].n;
		types.v = xcalloc(types.n, sizeof(*types.v));
		for (size_t i = 0; i < types.n; i++) {
			types.v[i].s = expand(r, &n->tagval[V_CONTENT].v[i]);
			types.v[i].len = strlen(types.v[i].s);
		}
	}
	sv_body_extract(r->msg.data, r->msg.len, sv_has(n, G_RAW),
	    sv_has(n, G_CONTENT) ? &types : NULL, &b);
	r->res->steps += (unsigned)(r->msg.len / 4096);
	rc = match_values(r, n, b.parts, b.n, &n->pos[0]);
	sv_body_free(&b);
	for (size_t i = 0; i < types.n; i++)
		free(types.v[i].s);
	free(types.v);
	return rc;
}

static int
test_date(struct sv_run *r, const struct sv_node *n)
{
	struct vals vs = { NULL, 0 };
	char *part = expand(r, &n->pos[n->npos - 2].v[0]);
	int zone = r->in->zone_minutes, rc;
	bool has_zone = false;
	char out[64];

	if (sv_has(n, G_ZONE)) {
		char *z = expand(r, &n->tagval[V_ZONE].v[0]);

		has_zone = sv_zone_parse(z, &zone);
		free(z);
		if (!has_zone)
			zone = r->in->zone_minutes;
	}
	if (!sv_is_date_part(part)) {
		free(part);
		return 0;
	}
	if (n->id == T_CURRENTDATE) {
		if (sv_date_part(r->in->now, zone, part, out, sizeof(out)))
			vals_add(&vs, xstrdup(out));
	} else {
		const struct sv_field *f[SV_MAX_FIELDS_TESTED];
		char *name = expand(r, &n->pos[0].v[0]);
		size_t nf = fields_named(r, n, name, f, ARRAY_LEN(f));

		free(name);
		for (size_t i = 0; i < nf; i++) {
			char *v = sv_field_value(f[i], false);
			struct sv_date d;

			if (n->id == T_DATE && strcasecmp(f[i]->name,
			    "received") == 0) {
				/* RFC 5260 §4: the date after the last ';' */
				char *semi = strrchr(v, ';');

				if (semi != NULL)
					memmove(v, semi + 1, strlen(semi));
			}
			if (sv_date_parse(v, &d) && sv_date_part(d.t,
			    sv_has(n, G_ORIGINALZONE) ? d.zone : zone, part,
			    out, sizeof(out)))
				vals_add(&vs, xstrdup(out));
			free(v);
		}
	}
	free(part);
	rc = match_values(r, n, vs.v, vs.n, &n->pos[n->npos - 1]);
	vals_free(&vs);
	return rc;
}

static int
test_duplicate(struct sv_run *r, const struct sv_node *n)
{
	char *id = NULL, *handle;
	uint64_t seconds = sv_has(n, G_SECONDS) ? n->num : 7 * 86400;
	bool seen;

	if (sv_has(n, G_UNIQUEID)) {
		id = expand(r, &n->tagval[V_UNIQUEID].v[0]);
	} else {
		char *name = sv_has(n, G_HEADER) ?
		    expand(r, &n->tagval[V_HEADER].v[0]) :
		    xstrdup("message-id");

		for (size_t i = 0; i < r->msg.nf && id == NULL; i++) {
			if (strcasecmp(r->msg.f[i].name, name) == 0)
				id = sv_field_value(&r->msg.f[i], false);
		}
		free(name);
	}
	if (id == NULL)
		return 0;
	handle = sv_has(n, G_HANDLE) ? expand(r, &n->tagval[V_HANDLE].v[0]) :
	    xstrdup("");
	seen = r->cb != NULL && r->cb->duplicate_check != NULL &&
	    r->cb->duplicate_check(r->cb->ctx, handle, id, seconds);
	/* RFC 7352 §3: the id is recorded only when the delivery is
	 * done, so it is an action the caller commits with the others */
	for (size_t i = 0; i < r->res->nactions; i++) {
		struct sieve_action *a = &r->res->actions[i];

		if (a->type == SIEVE_ACT_TRACK_DUPLICATE &&
		    strcmp(a->dup_handle, handle) == 0 &&
		    strcmp(a->dup_id, id) == 0) {
			free(handle);
			free(id);
			return seen;
		}
	}
	{
		struct sieve_action *a = action_new(r,
		    SIEVE_ACT_TRACK_DUPLICATE, n->line);

		if (a == NULL) {
			free(handle);
			free(id);
			return -1;
		}
		a->dup_handle = handle;
		a->dup_id = id;
		a->dup_seconds = seconds;
		a->is_dup_last = sv_has(n, G_LAST);
	}
	return seen;
}

static int
test_mailboxexists(struct sv_run *r, const struct sv_node *n)
{
	for (size_t i = 0; i < n->pos[0].n; i++) {
		char *mb = expand(r, &n->pos[0].v[i]);
		bool ok;

		if (r->cb != NULL && r->cb->mailbox_exists != NULL)
			ok = r->cb->mailbox_exists(r->cb->ctx, mb);
		else
			ok = strcasecmp(mb, "INBOX") == 0;
		free(mb);
		if (!ok)
			return 0;
	}
	return 1;
}

static int
test_spam(struct sv_run *r, const struct sv_node *n)
{
	char v[16];
	char *val = v;

	if (n->id == T_VIRUSTEST)
		snprintf(v, sizeof(v), "%d", r->in->virus_score);
	else if (sv_has(n, G_PERCENT))
		snprintf(v, sizeof(v), "%d", r->in->spam_percent < 0 ? 0 :
		    r->in->spam_percent);
	else
		snprintf(v, sizeof(v), "%d", r->in->spam_score);
	return match_values(r, n, &val, 1, &n->pos[0]);
}

static int
eval(struct sv_run *r, const struct sv_node *n)
{
	int rc;

	if (!step(r, n->line))
		return -1;
	switch (n->id) {
	case T_TRUE:
		return 1;
	case T_FALSE:
		return 0;
	case T_NOT:
		rc = eval(r, &n->kids[0]);
		return rc < 0 ? rc : !rc;
	case T_ALLOF:
		for (size_t i = 0; i < n->nkids; i++) {
			rc = eval(r, &n->kids[i]);
			if (rc <= 0)
				return rc;
		}
		return 1;
	case T_ANYOF:
		for (size_t i = 0; i < n->nkids; i++) {
			rc = eval(r, &n->kids[i]);
			if (rc != 0)
				return rc;
		}
		return 0;
	case T_HEADER:
	case T_ADDRESS:
		return test_header_like(r, n);
	case T_ENVELOPE:
		return test_envelope(r, n);
	case T_EXISTS:
		return test_exists(r, n);
	case T_SIZE:
		return sv_has(n, G_OVER) ? r->msg.len > n->num :
		    r->msg.len < n->num;
	case T_STRING:
		return test_string(r, n);
	case T_HASFLAG:
		return test_hasflag(r, n);
	case T_BODY:
		return test_body(r, n);
	case T_DATE:
	case T_CURRENTDATE:
		return test_date(r, n);
	case T_DUPLICATE:
		return test_duplicate(r, n);
	case T_MAILBOXEXISTS:
		return test_mailboxexists(r, n);
	case T_SPAMTEST:
	case T_VIRUSTEST:
		return test_spam(r, n);
	default:
		panic("sieve: test %u unknown", n->id);
	}
}

/* ---- Actions ----------------------------------------------------------- */

static struct sieve_action *
action_new(struct sv_run *r, enum sieve_action_type type, unsigned line)
{
	struct sieve_result *res = r->res;
	struct sieve_action *a;

	if (res->nactions >= SIEVE_MAX_ACTIONS) {
		run_fail(r, line, "too many actions (more than %d)",
		    SIEVE_MAX_ACTIONS);
		return NULL;
	}
	res->actions = xrealloc(res->actions,
	    (res->nactions + 1) * sizeof(*res->actions));
	a = &res->actions[res->nactions++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	a->line = line;
	return a;
}

static struct sieve_action *
action_find(struct sv_run *r, enum sieve_action_type type)
{
	for (size_t i = 0; i < r->res->nactions; i++) {
		if (r->res->actions[i].type == type)
			return &r->res->actions[i];
	}
	return NULL;
}

/* The flags an action stores with: :flags, else the internal variable. */
static char **
action_flags(struct sv_run *r, const struct sv_node *n)
{
	char **fl = NULL;
	size_t nfl = 0;

	if (sv_has(n, G_FLAGS)) {
		for (size_t i = 0; i < n->tagval[V_FLAGS].n; i++) {
			char *s = expand(r, &n->tagval[V_FLAGS].v[i]);

			flags_split(s, &fl, &nfl);
			free(s);
		}
	} else if (has_ext(r, EXT_IMAP4FLAGS)) {
		for (size_t i = 0; i < r->nflags; i++)
			flags_split(r->flags[i], &fl, &nfl);
	} else {
		return NULL;
	}
	fl = xrealloc(fl, (nfl + 1) * sizeof(*fl));
	fl[nfl] = NULL;
	return fl;
}

static bool
is_store(const struct sieve_action *a)
{
	return a->type == SIEVE_ACT_KEEP || a->type == SIEVE_ACT_FILEINTO;
}

/* RFC 5429 §2.1: reject and ereject refuse a message that is also stored
 * or forwarded; Pigeonhole fails the run the same way. */
static bool
conflicts_with_reject(struct sv_run *r, enum sieve_action_type type,
    unsigned line)
{
	for (size_t i = 0; i < r->res->nactions; i++) {
		const struct sieve_action *a = &r->res->actions[i];
		bool is_rej = a->type == SIEVE_ACT_REJECT ||
		    a->type == SIEVE_ACT_EREJECT;
		bool is_new_rej = type == SIEVE_ACT_REJECT ||
		    type == SIEVE_ACT_EREJECT;

		if (is_rej && is_new_rej) {
			run_fail(r, line, "duplicate reject/ereject action "
			    "not allowed");
			return true;
		}
		if ((is_rej && (type == SIEVE_ACT_KEEP ||
		    type == SIEVE_ACT_FILEINTO || type == SIEVE_ACT_REDIRECT ||
		    type == SIEVE_ACT_VACATION)) ||
		    (is_new_rej && (is_store(a) ||
		    a->type == SIEVE_ACT_REDIRECT ||
		    a->type == SIEVE_ACT_VACATION))) {
			run_fail(r, line, "reject action conflicts with other "
			    "action");
			return true;
		}
	}
	return false;
}

static void
do_store(struct sv_run *r, const struct sv_node *n, const char *mailbox)
{
	struct sieve_action *a = NULL;
	bool is_keep = strcmp(mailbox, "INBOX") == 0;

	if (conflicts_with_reject(r, SIEVE_ACT_FILEINTO, n->line))
		return;
	/* RFC 5228 §4.1/§4.2: storing twice into one mailbox is once */
	for (size_t i = 0; i < r->res->nactions; i++) {
		struct sieve_action *b = &r->res->actions[i];

		if (is_store(b) && strcmp(b->mailbox, mailbox) == 0)
			a = b;
	}
	if (a == NULL) {
		a = action_new(r, is_keep ? SIEVE_ACT_KEEP :
		    SIEVE_ACT_FILEINTO, n->line);
		if (a == NULL)
			return;
		a->mailbox = xstrdup(mailbox);
		a->flags = action_flags(r, n);
	} else {
		char **fl = action_flags(r, n);

		/* the later flags replace the earlier */
		if (fl != NULL) {
			for (size_t i = 0; a->flags != NULL &&
			    a->flags[i] != NULL; i++)
				free(a->flags[i]);
			free(a->flags);
			a->flags = fl;
		}
	}
	if (sv_has(n, G_CREATE))
		a->is_create = true;
	if (sv_has(n, G_COPY) && a->type == SIEVE_ACT_FILEINTO)
		a->is_copy = true;
	if (!sv_has(n, G_COPY))
		r->is_implicit_keep = false;
}

/* A redirect address: an addr-spec with a local part and a domain. */
bool
sieve_is_address_valid(const char *s)
{
	const char *at = strrchr(s, '@');

	if (at == NULL || at == s || at[1] == '\0' || strlen(s) > 512)
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || *p == '<' || *p == '>' ||
		    *p == ',' || *p == '(' || *p == ')')
			return false;
	}
	return true;
}

static void
do_redirect(struct sv_run *r, const struct sv_node *n)
{
	char *addr = expand(r, &n->pos[0].v[0]);
	struct sieve_action *a;

	if (!sieve_is_address_valid(addr)) {
		run_fail(r, n->line, "redirect: invalid address '%s'", addr);
		free(addr);
		return;
	}
	if (conflicts_with_reject(r, SIEVE_ACT_REDIRECT, n->line)) {
		free(addr);
		return;
	}
	for (size_t i = 0; i < r->res->nactions; i++) {
		a = &r->res->actions[i];
		if (a->type == SIEVE_ACT_REDIRECT &&
		    strcasecmp(a->address, addr) == 0) {
			if (!sv_has(n, G_COPY)) {
				a->is_copy = false;
				r->is_implicit_keep = false;
			}
			free(addr);
			return;
		}
	}
	if (++r->redirects > SIEVE_MAX_REDIRECTS) {
		run_fail(r, n->line, "number of redirect actions exceeds "
		    "policy limit (%u > %d)", r->redirects,
		    SIEVE_MAX_REDIRECTS);
		free(addr);
		return;
	}
	a = action_new(r, SIEVE_ACT_REDIRECT, n->line);
	if (a == NULL) {
		free(addr);
		return;
	}
	a->address = addr;
	a->is_copy = sv_has(n, G_COPY);
	if (!a->is_copy)
		r->is_implicit_keep = false;
}

/* Pigeonhole's bound on the vacation period (sieve_vacation_min_period:
 * a day, :seconds 0 included, against reply loops) and the default of
 * RFC 5230 §4.1, 7 days. */
#define VACATION_MIN (1 * 86400)
#define VACATION_DEFAULT (7 * 86400)

static void
do_vacation(struct sv_run *r, const struct sv_node *n)
{
	struct sieve_action *a;
	struct sieve_vacation *v;
	uint64_t secs = VACATION_DEFAULT;

	if (action_find(r, SIEVE_ACT_VACATION) != NULL) {
		run_fail(r, n->line, "duplicate vacation action not allowed");
		return;
	}
	if (conflicts_with_reject(r, SIEVE_ACT_VACATION, n->line))
		return;
	a = action_new(r, SIEVE_ACT_VACATION, n->line);
	if (a == NULL)
		return;
	v = &a->vacation;
	if (sv_has(n, G_DAYS))
		secs = n->num * 86400;
	else if (sv_has(n, G_SECONDS))
		secs = n->num;
	if (secs < VACATION_MIN)
		secs = VACATION_MIN;
	v->seconds = secs;
	v->reason = expand(r, &n->pos[0].v[0]);
	if (sv_has(n, G_SUBJECT))
		v->subject = expand(r, &n->tagval[V_SUBJECT].v[0]);
	if (sv_has(n, G_FROM))
		v->from = expand(r, &n->tagval[V_FROM].v[0]);
	v->is_mime = sv_has(n, G_MIME);
	v->addresses = xcalloc(n->tagval[V_ADDRESSES].n + 1,
	    sizeof(*v->addresses));
	for (size_t i = 0; i < n->tagval[V_ADDRESSES].n; i++)
		v->addresses[i] = expand(r, &n->tagval[V_ADDRESSES].v[i]);
	if (sv_has(n, G_HANDLE)) {
		v->handle = expand(r, &n->tagval[V_HANDLE].v[0]);
	} else {
		/* RFC 5230 §4.2: derived from the arguments; as Pigeonhole
		 * does, from their text before variables are substituted
		 * (a reply per script rule, not per subject), and the :mime
		 * flag */
		v->handle = xasprintf("%s%s%s%s", n->pos[0].v[0].s,
		    sv_has(n, G_SUBJECT) ? n->tagval[V_SUBJECT].v[0].s :
		    "<default-subject>",
		    sv_has(n, G_FROM) ? n->tagval[V_FROM].v[0].s :
		    "<default-from>",
		    v->is_mime ? "<MIME>" : "<NO-MIME>");
	}
}

static void
do_reject(struct sv_run *r, const struct sv_node *n,
    enum sieve_action_type type)
{
	struct sieve_action *a;

	if (conflicts_with_reject(r, type, n->line))
		return;
	a = action_new(r, type, n->line);
	if (a == NULL)
		return;
	a->reason = expand(r, &n->pos[0].v[0]);
	r->is_implicit_keep = false;
}

/* RFC 5229 §4.1: modifiers by precedence, highest first. */
static char *
apply_modifiers(const struct sv_node *n, char *v)
{
	size_t len = strlen(v);

	if (sv_has(n, G_LOWER) || sv_has(n, G_UPPER)) {
		for (size_t i = 0; i < len; i++)
			v[i] = (char)(sv_has(n, G_LOWER) ?
			    tolower((unsigned char)v[i]) :
			    toupper((unsigned char)v[i]));
	}
	if (len > 0 && sv_has(n, G_LOWERFIRST))
		v[0] = (char)tolower((unsigned char)v[0]);
	if (len > 0 && sv_has(n, G_UPPERFIRST))
		v[0] = (char)toupper((unsigned char)v[0]);
	if (sv_has(n, G_QUOTEWILDCARD) || sv_has(n, G_QUOTEREGEX)) {
		const char *special = sv_has(n, G_QUOTEREGEX) ?
		    "\\*?.+[](){}|^$" : "\\*?";
		struct dyn d = { NULL, 0, 0 };

		dyn_add(&d, "", 0);
		for (size_t i = 0; i < len; i++) {
			if (strchr(special, v[i]) != NULL)
				dyn_add(&d, "\\", 1);
			dyn_add(&d, v + i, 1);
		}
		free(v);
		v = d.s;
		len = d.len;
	}
	if (sv_has(n, G_LENGTH)) {
		size_t chars = 0;

		/* characters, not octets (RFC 5229 §4.1) */
		for (size_t i = 0; i < len; i++) {
			if (((unsigned char)v[i] & 0xc0) != 0x80)
				chars++;
		}
		free(v);
		v = xasprintf("%zu", chars);
	}
	return v;
}

static char *
truncate_value(char *v)
{
	size_t n = strlen(v);

	if (n > SIEVE_MAX_VARIABLE_SIZE) {
		n = SIEVE_MAX_VARIABLE_SIZE;
		while (n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80)
			n--;
		v[n] = '\0';
	}
	return v;
}

static void
do_flags(struct sv_run *r, const struct sv_node *n)
{
	const struct sv_list *list = &n->pos[n->npos - 1];
	char **cur = NULL, **add = NULL;
	size_t ncur = 0, nadd = 0;
	char *varname = NULL;

	for (size_t i = 0; i < list->n; i++) {
		char *s = expand(r, &list->v[i]);

		flags_split(s, &add, &nadd);
		free(s);
	}
	if (n->npos == 2) {
		varname = expand(r, &n->pos[0].v[0]);
		flags_split(var_get(r, varname, strlen(varname)), &cur, &ncur);
	} else {
		for (size_t i = 0; i < r->nflags; i++)
			flags_split(r->flags[i], &cur, &ncur);
	}
	if (n->id == C_SETFLAG) {
		flags_free(cur, ncur);
		cur = add;
		ncur = nadd;
		add = NULL;
		nadd = 0;
	} else if (n->id == C_ADDFLAG) {
		for (size_t i = 0; i < nadd; i++)
			flags_split(add[i], &cur, &ncur);
	} else {
		for (size_t i = 0; i < nadd; i++) {
			for (size_t j = 0; j < ncur; j++) {
				if (strcasecmp(cur[j], add[i]) == 0) {
					free(cur[j]);
					memmove(&cur[j], &cur[j + 1],
					    (ncur - j - 1) * sizeof(*cur));
					ncur--;
					break;
				}
			}
		}
	}
	flags_free(add, nadd);
	if (varname != NULL) {
		var_set(r, varname, truncate_value(flags_join(cur, ncur)),
		    n->line);
		flags_free(cur, ncur);
		free(varname);
	} else {
		flags_free(r->flags, r->nflags);
		r->flags = cur;
		r->nflags = ncur;
	}
}

/* RFC 5293 §6: Received and Auto-Submitted stay as they are. */
static bool
is_protected_field(const char *name)
{
	return strcasecmp(name, "received") == 0 ||
	    strcasecmp(name, "auto-submitted") == 0;
}

bool
sv_is_field_name(const char *s)
{
	if (*s == '\0' || strlen(s) > 200)
		return false;
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s <= 32 || (unsigned char)*s >= 127 ||
		    *s == ':')
			return false;
	}
	return true;
}

static void
edit_record(struct sv_run *r, bool is_delete, const char *name,
    const char *value)
{
	struct sieve_result *res = r->res;
	struct sieve_edit *e;

	res->edits = xrealloc(res->edits, (res->nedits + 1) *
	    sizeof(*res->edits));
	e = &res->edits[res->nedits++];
	e->is_delete = is_delete;
	e->name = xstrdup(name);
	e->value = value != NULL ? xstrdup(value) : NULL;
	r->msg.is_edited = true;
}

static void
do_addheader(struct sv_run *r, const struct sv_node *n)
{
	char *name = expand(r, &n->pos[0].v[0]);
	char *value = expand(r, &n->pos[1].v[0]);
	struct sv_field f;

	if (!sv_is_field_name(name)) {
		run_fail(r, n->line, "addheader: invalid field name '%s'",
		    name);
		goto out;
	}
	if (is_protected_field(name))
		goto out;
	if (++r->edits > SIEVE_MAX_HEADER_EDITS) {
		run_fail(r, n->line, "too many header edits");
		goto out;
	}
	/* the value as one line: CR and LF become spaces */
	for (char *p = value; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	}
	f.name = xstrdup(name);
	f.raw = xasprintf(" %s", value);
	r->msg.f = xrealloc(r->msg.f, (r->msg.nf + 1) * sizeof(*r->msg.f));
	if (sv_has(n, G_LAST)) {
		r->msg.f[r->msg.nf] = f;
	} else {
		memmove(&r->msg.f[1], &r->msg.f[0],
		    r->msg.nf * sizeof(*r->msg.f));
		r->msg.f[0] = f;
	}
	r->msg.nf++;
	edit_record(r, false, name, value);
out:
	free(name);
	free(value);
}

static void
do_deleteheader(struct sv_run *r, const struct sv_node *n)
{
	char *name = expand(r, &n->pos[0].v[0]);
	size_t count = 0, total = 0, idx = (size_t)n->num;
	bool has_index = sv_has(n, G_INDEX);

	if (!sv_is_field_name(name)) {
		run_fail(r, n->line, "deleteheader: invalid field name '%s'",
		    name);
		free(name);
		return;
	}
	if (is_protected_field(name)) {
		free(name);
		return;
	}
	for (size_t i = 0; i < r->msg.nf; i++)
		total += strcasecmp(r->msg.f[i].name, name) == 0;
	if (has_index && sv_has(n, G_LAST))
		idx = idx <= total ? total - idx + 1 : 0;
	for (size_t i = 0; i < r->msg.nf;) {
		struct sv_field *f = &r->msg.f[i];
		bool del;

		if (strcasecmp(f->name, name) != 0) {
			i++;
			continue;
		}
		count++;
		del = !has_index || count == idx;
		if (del && n->pos[1].n > 0) {
			char *v = sv_field_value(f, true);
			int m = match_values(r, n, &v, 1, &n->pos[1]);

			free(v);
			if (m < 0)
				break;
			del = m > 0;
		}
		if (!del) {
			i++;
			continue;
		}
		if (++r->edits > SIEVE_MAX_HEADER_EDITS) {
			run_fail(r, n->line, "too many header edits");
			break;
		}
		edit_record(r, true, f->name, NULL);
		free(f->name);
		free(f->raw);
		memmove(f, f + 1, (r->msg.nf - i - 1) * sizeof(*f));
		r->msg.nf--;
	}
	free(name);
}

static enum flow run_block(struct sv_run *r, const struct sv_node *cmds,
    size_t n);

static enum flow
run_script(struct sv_run *r, const struct sv_script *sc)
{
	struct sv_frame frame, *saved = r->frame;
	enum flow f;

	if (r->depth >= SIEVE_MAX_INCLUDE_DEPTH + 1) {
		run_fail(r, 0, "include nesting too deep");
		return FLOW_ERROR;
	}
	memset(&frame, 0, sizeof(frame));
	frame.script = sc;
	r->frame = &frame;
	r->depth++;
	f = run_block(r, sc->cmds, sc->ncmds);
	r->depth--;
	r->frame = saved;
	scope_free(&frame.local);
	flags_free(frame.globals, frame.nglobals);
	return f == FLOW_RETURN ? FLOW_NEXT : f;
}

static enum flow
run_command(struct sv_run *r, const struct sv_node *n)
{
	char *s;

	if (!step(r, n->line))
		return FLOW_ERROR;
	switch (n->id) {
	case C_REQUIRE:
		break;
	case C_STOP:
		return FLOW_STOP;
	case C_RETURN:
		return FLOW_RETURN;
	case C_KEEP:
		do_store(r, n, "INBOX");
		break;
	case C_FILEINTO:
		s = expand(r, &n->pos[0].v[0]);
		do_store(r, n, s);
		free(s);
		break;
	case C_DISCARD:
		if (action_find(r, SIEVE_ACT_DISCARD) == NULL)
			action_new(r, SIEVE_ACT_DISCARD, n->line);
		r->is_implicit_keep = false;
		break;
	case C_REDIRECT:
		do_redirect(r, n);
		break;
	case C_REJECT:
		do_reject(r, n, SIEVE_ACT_REJECT);
		break;
	case C_EREJECT:
		do_reject(r, n, SIEVE_ACT_EREJECT);
		break;
	case C_VACATION:
		do_vacation(r, n);
		break;
	case C_SET: {
		char *name = expand(r, &n->pos[0].v[0]);
		char *value = apply_modifiers(n, expand(r, &n->pos[1].v[0]));

		var_set(r, name, truncate_value(value), n->line);
		free(name);
		break;
	}
	case C_SETFLAG:
	case C_ADDFLAG:
	case C_REMOVEFLAG:
		do_flags(r, n);
		break;
	case C_ADDHEADER:
		do_addheader(r, n);
		break;
	case C_DELETEHEADER:
		do_deleteheader(r, n);
		break;
	case C_GLOBAL:
		for (size_t i = 0; i < n->pos[0].n; i++) {
			struct sv_frame *fr = r->frame;

			fr->globals = xrealloc(fr->globals,
			    (fr->nglobals + 1) * sizeof(*fr->globals));
			fr->globals[fr->nglobals++] =
			    xstrdup(n->pos[0].v[i].s);
		}
		break;
	case C_INCLUDE:
		if (n->inc == NULL)
			break;	/* :optional and missing */
		if (n->inc->is_once) {
			if (r->once_done[n->inc->index])
				break;
			r->once_done[n->inc->index] = 1;
		}
		return run_script(r, n->inc);
	default:
		panic("sieve: command %u unknown", n->id);
	}
	return r->is_failed ? FLOW_ERROR : FLOW_NEXT;
}

static enum flow
run_block(struct sv_run *r, const struct sv_node *cmds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct sv_node *c = &cmds[i];
		enum flow f;

		if (c->id == C_IF) {
			/* the chain: if, elsif..., else */
			size_t j = i;
			bool done = false;

			for (;;) {
				const struct sv_node *b = &cmds[j];
				int t = 1;

				if (!done) {
					if (b->id != C_ELSE)
						t = eval(r, &b->kids[0]);
					if (t < 0 || r->is_failed)
						return FLOW_ERROR;
					if (t > 0) {
						done = true;
						f = run_block(r, b->block,
						    b->nblock);
						if (f != FLOW_NEXT)
							return f;
					}
				}
				if (j + 1 < n && (cmds[j + 1].id == C_ELSIF ||
				    cmds[j + 1].id == C_ELSE) &&
				    b->id != C_ELSE) {
					j++;
					continue;
				}
				break;
			}
			i = j;
			continue;
		}
		f = run_command(r, c);
		if (f != FLOW_NEXT)
			return f;
	}
	return FLOW_NEXT;
}

static void
action_deinit(struct sieve_action *a)
{
	free(a->mailbox);
	for (size_t i = 0; a->flags != NULL && a->flags[i] != NULL; i++)
		free(a->flags[i]);
	free(a->flags);
	free(a->address);
	free(a->reason);
	free(a->vacation.subject);
	free(a->vacation.from);
	for (size_t i = 0; a->vacation.addresses != NULL &&
	    a->vacation.addresses[i] != NULL; i++)
		free(a->vacation.addresses[i]);
	free(a->vacation.addresses);
	free(a->vacation.handle);
	free(a->vacation.reason);
	free(a->dup_handle);
	free(a->dup_id);
}

static char *
header_build(const struct sv_msg *m)
{
	struct dyn d = { NULL, 0, 0 };

	dyn_add(&d, "", 0);
	for (size_t i = 0; i < m->nf; i++) {
		dyn_add(&d, m->f[i].name, strlen(m->f[i].name));
		dyn_add(&d, ":", 1);
		dyn_add(&d, m->f[i].raw, strlen(m->f[i].raw));
		dyn_add(&d, "\r\n", 2);
	}
	dyn_add(&d, "\r\n", 2);
	return d.s;
}

int
sieve_run(const struct sieve_program *p, const struct sieve_input *in,
    const struct sieve_callbacks *cb, struct sieve_result *out)
{
	struct sv_run r;
	enum flow f;

	memset(out, 0, sizeof(*out));
	memset(&r, 0, sizeof(r));
	r.prog = p;
	r.in = in;
	r.cb = cb;
	r.res = out;
	r.is_implicit_keep = true;
	r.once_done = xcalloc(p->nscripts + 1, 1);
	sv_msg_init(&r.msg, in->message != NULL ? in->message : "",
	    in->message != NULL ? in->len : 0);
	f = run_script(&r, p->main);
	if (f == FLOW_ERROR || r.is_failed) {
		if (out->error == NULL)
			out->error = xstrdup("the script failed");
		for (size_t i = 0; i < out->nactions; i++)
			action_deinit(&out->actions[i]);
		free(out->actions);
		out->actions = NULL;
		out->nactions = 0;
		out->is_implicit_keep = true;
	} else {
		out->is_implicit_keep = r.is_implicit_keep;
		if (r.is_implicit_keep && r.nflags > 0) {
			out->keep_flags = xcalloc(r.nflags + 1,
			    sizeof(*out->keep_flags));
			for (size_t i = 0; i < r.nflags; i++)
				out->keep_flags[i] = xstrdup(r.flags[i]);
		}
		if (r.msg.is_edited)
			out->header = header_build(&r.msg);
	}
	caps_free(r.caps);
	flags_free(r.flags, r.nflags);
	scope_free(&r.globals);
	sv_msg_deinit(&r.msg);
	free(r.once_done);
	return out->error != NULL ? -1 : 0;
}

void
sieve_result_deinit(struct sieve_result *r)
{
	for (size_t i = 0; i < r->nactions; i++)
		action_deinit(&r->actions[i]);
	free(r->actions);
	for (size_t i = 0; r->keep_flags != NULL && r->keep_flags[i] != NULL;
	    i++)
		free(r->keep_flags[i]);
	free(r->keep_flags);
	free(r->header);
	for (size_t i = 0; i < r->nedits; i++) {
		free(r->edits[i].name);
		free(r->edits[i].value);
	}
	free(r->edits);
	free(r->error);
	memset(r, 0, sizeof(*r));
}
