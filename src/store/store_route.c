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

/* The oldest enabled account (lowest id) of domain, or of every domain
 * when domain is NULL. */
static int
first_account(struct store *st, const char *domain,
    struct store_route *route_out, enum store_err *err_out)
{
	struct store_account *list = NULL;
	size_t n = 0;
	int64_t best = 0;

	if (store_account_list(st, domain, &list, &n, err_out) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (list[i].is_enabled && (best == 0 || list[i].id < best))
			best = list[i].id;
	}
	store_account_list_free(&list, n);
	if (best == 0) {
		*err_out = STORE_NOT_FOUND;
		return -1;
	}
	memset(route_out, 0, sizeof(*route_out));
	add_account(route_out, best);
	return 0;
}

int
store_route_postmaster(struct store *st, const char *domain,
    const char *admin, struct store_route *route_out, const char **how_out,
    enum store_err *err_out)
{
	char *address;
	int rc;

	memset(route_out, 0, sizeof(*route_out));
	if (domain != NULL) {
		address = xasprintf("postmaster@%s", domain);
		rc = store_route_resolve(st, address, route_out, err_out);
		free(address);
		*how_out = "domain";
		/* Ours and taken, or not ours at all (STORE_INVALID), or
		 * the store failed: that is the answer. */
		if (rc == 0 || *err_out != STORE_NOT_FOUND)
			return rc;
	}
	if (admin != NULL) {
		rc = store_route_resolve(st, admin, route_out, err_out);
		*how_out = "config";
		if (rc == 0 || *err_out == STORE_TEMP)
			return rc;
		log_warn(NULL, "store.route postmaster=%s result=not_local "
		    "hint=\"[server] postmaster names no account or alias "
		    "here\"", admin);
	}
	/* Nobody was named: the first account made is the one who set the
	 * server up (quickstart makes it first), better than refusing what
	 * RFC 5321 §4.5.1 says must be accepted. */
	*how_out = "first_account";
	if (domain != NULL && first_account(st, domain, route_out,
	    err_out) == 0)
		return 0;
	if (domain != NULL && *err_out == STORE_TEMP)
		return -1;
	return first_account(st, NULL, route_out, err_out);
}
