/*
 * auth_app_password: passwords made for one device each (`postern
 * app-password add`), checked when the account password does not match.
 * Runs on the pool: each check is a slow hash.
 */
#include "auth/auth_int.h"

#include <stdio.h>
#include <time.h>

static uint32_t
proto_bit(enum auth_proto proto)
{
	switch (proto) {
	case AUTH_PROTO_IMAP:
		return STORE_APP_IMAP;
	case AUTH_PROTO_POP3:
		return STORE_APP_POP3;
	default:
		return STORE_APP_SUBMISSION;
	}
}

bool
auth_app_password_check(struct auth *a, const struct store_account *acc,
    const char *password, enum auth_proto proto, const char *peer,
    char *name_out, size_t namelen)
{
	struct store_app_password *list = NULL;
	size_t n = 0;
	enum store_err err;
	bool is_ok = false;

	if (store_app_password_list(auth_store(a), acc->id, &list, &n,
	    &err) < 0)
		return false;
	for (size_t i = 0; i < n && !is_ok; i++) {
		if (list[i].protocols != 0 &&
		    !(list[i].protocols & proto_bit(proto)))
			continue;
		if (!is_auth_password_ok(password, list[i].hash))
			continue;
		is_ok = true;
		snprintf(name_out, namelen, "%s", list[i].name);
		store_app_password_touch(auth_store(a), list[i].id,
		    (int64_t)time(NULL), peer, &err);
	}
	store_app_password_list_free(&list, n);
	return is_ok;
}
