/*
 * store_route: where mail for an address goes (store.h,
 * store_route_resolve): the account of that name, the targets of its
 * aliases followed up to STORE_ALIAS_DEPTH levels, forwarding, and the
 * domain's catch-all for local parts nobody has. Built on the backend's
 * reads, so both backends route alike. Any thread.
 */
#include "store/store_backend.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"

struct route_walk {
	struct store *st;
	struct store_route *r;
	char **seen;		/* addresses visited: loops end here */
	size_t nseen, seen_cap;
	enum store_err err;	/* STORE_TEMP once a read failed */
};

static bool
is_seen(struct route_walk *w, const char *addr)
{
	for (size_t i = 0; i < w->nseen; i++) {
		if (strcmp(w->seen[i], addr) == 0)
			return true;
	}
	if (w->nseen == w->seen_cap) {
		w->seen_cap = w->seen_cap ? w->seen_cap * 2 : 8;
		w->seen = xrealloc(w->seen, w->seen_cap * sizeof(*w->seen));
	}
	w->seen[w->nseen++] = xstrdup(addr);
	return false;
}

static void
add_account(struct store_route *r, int64_t id)
{
	for (size_t i = 0; i < r->naccounts; i++) {
		if (r->accounts[i] == id)
			return;
	}
	r->accounts = xrealloc(r->accounts,
	    (r->naccounts + 1) * sizeof(*r->accounts));
	r->accounts[r->naccounts++] = id;
}

static void
add_external(struct store_route *r, const char *addr)
{
	for (size_t i = 0; i < r->nexternal; i++) {
		if (strcmp(r->external[i], addr) == 0)
			return;
	}
	r->external = xrealloc(r->external,
	    (r->nexternal + 1) * sizeof(*r->external));
	r->external[r->nexternal++] = xstrdup(addr);
}

/* Follows addr (normalized); depth counts the aliases behind us. */
static void
walk(struct route_walk *w, const char *addr, int depth)
{
	const struct store_backend *be = w->st->be;
	struct store_account a;
	enum store_err err;
	char *catchall = NULL, **targets = NULL;
	const char *domain = strrchr(addr, '@') + 1;
	bool is_taken = false;

	if (is_seen(w, addr))
		return;
	if (be->domain_get(w->st, domain, &catchall, &err) < 0) {
		if (err == STORE_NOT_FOUND)
			add_external(w->r, addr);
		else
			w->err = err;
		return;
	}
	if (be->account_get(w->st, addr, 0, &a, &err) == 0) {
		is_taken = true;
		if (a.forward_to != NULL) {
			if (depth < STORE_ALIAS_DEPTH)
				walk(w, a.forward_to, depth + 1);
			if (a.is_forward_kept)
				add_account(w->r, a.id);
		} else {
			add_account(w->r, a.id);
		}
		store_account_deinit(&a);
	} else if (err != STORE_NOT_FOUND) {
		w->err = err;
	}
	if (be->alias_targets(w->st, addr, &targets, &err) == 0) {
		is_taken = true;
		for (char **t = targets; *t != NULL; t++) {
			if (depth < STORE_ALIAS_DEPTH)
				walk(w, *t, depth + 1);
			else
				log_warn(NULL, "store.route alias=%s "
				    "target=%s result=too_deep", addr, *t);
		}
		store_strings_free(&targets);
	} else if (err != STORE_NOT_FOUND) {
		w->err = err;
	}
	if (!is_taken && catchall != NULL && depth < STORE_ALIAS_DEPTH)
		walk(w, catchall, depth + 1);
	free(catchall);
}

int
store_route_resolve(struct store *st, const char *address,
    struct store_route *route_out, enum store_err *err_out)
{
	struct route_walk w = { .st = st, .r = route_out, .err = STORE_OK };
	const char *domain;
	char *norm, *catchall = NULL;
	int rc = 0;

	memset(route_out, 0, sizeof(*route_out));
	if (store_name_address(address, &norm, &domain) < 0) {
		*err_out = STORE_INVALID;
		return -1;
	}
	if (st->be->domain_get(st, domain, &catchall, err_out) < 0) {
		if (*err_out == STORE_NOT_FOUND)
			*err_out = STORE_INVALID;
		free(norm);
		return -1;
	}
	free(catchall);
	walk(&w, norm, 0);
	*err_out = w.err;
	if (w.err == STORE_OK && route_out->naccounts == 0 &&
	    route_out->nexternal == 0)
		*err_out = STORE_NOT_FOUND;
	if (*err_out != STORE_OK) {
		store_route_deinit(route_out);
		rc = -1;
	}
	for (size_t i = 0; i < w.nseen; i++)
		free(w.seen[i]);
	free(w.seen);
	free(norm);
	return rc;
}

void
store_route_deinit(struct store_route *r)
{
	for (size_t i = 0; i < r->nexternal; i++)
		free(r->external[i]);
	free(r->external);
	free(r->accounts);
	memset(r, 0, sizeof(*r));
}
