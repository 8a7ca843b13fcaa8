/*
 * cli_user: `postern user add|del|list|show|passwd|lock|unlock|set`.
 * Passwords are read from the terminal or stdin, never from argv.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "auth/auth.h"
#include "lib/config.h"
#include "lib/util.h"
#include "store/store.h"

static const char usage[] =
    "postern user add ADDRESS [KEY=VALUE...] | del ADDRESS | list [DOMAIN] |"
    " show ADDRESS | passwd ADDRESS | lock ADDRESS [MINUTES] |"
    " unlock ADDRESS | set ADDRESS KEY=VALUE...  [-c FILE] [--json]\n"
    "keys: name=TEXT quota=SIZE quota_messages=N enabled=yes|no"
    " imap|pop3|submission=on|off|default forward=ADDRESS|none"
    " keep_copy=yes|no pop3_retention_days=N";

static const char *
switch_name(enum store_switch sw)
{
	return sw == STORE_SWITCH_DEFAULT ? "default" :
	    sw == STORE_SWITCH_ON ? "on" : "off";
}

static int
switch_parse(const char *s, enum store_switch *out)
{
	bool b;

	if (strcasecmp(s, "default") == 0) {
		*out = STORE_SWITCH_DEFAULT;
		return 0;
	}
	if (config_parse_bool(s, &b) < 0)
		return -1;
	*out = b ? STORE_SWITCH_ON : STORE_SWITCH_OFF;
	return 0;
}

static void
string_set(char **field, const char *value)
{
	free(*field);
	*field = value != NULL ? xstrdup(value) : NULL;
}

/* Applies one KEY=VALUE to a. Returns 0, or -1 after printing why. */
static int
account_set(struct store_account *a, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char key[32];
	const char *v;
	uint64_t n;
	bool b;

	if (eq == NULL || (size_t)(eq - kv) >= sizeof(key)) {
		cli_fail("'%s': expected KEY=VALUE", kv);
		return -1;
	}
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	v = eq + 1;
	if (strcmp(key, "name") == 0) {
		string_set(&a->display_name, *v ? v : NULL);
	} else if (strcmp(key, "quota") == 0) {
		if (config_parse_size(v, &a->quota_bytes) < 0)
			goto bad;
	} else if (strcmp(key, "quota_messages") == 0) {
		if (config_parse_size(v, &n) < 0)
			goto bad;
		a->quota_messages = n;
	} else if (strcmp(key, "enabled") == 0) {
		if (config_parse_bool(v, &b) < 0)
			goto bad;
		a->is_enabled = b;
	} else if (strcmp(key, "imap") == 0) {
		if (switch_parse(v, &a->imap) < 0)
			goto bad;
	} else if (strcmp(key, "pop3") == 0) {
		if (switch_parse(v, &a->pop3) < 0)
			goto bad;
	} else if (strcmp(key, "submission") == 0) {
		if (switch_parse(v, &a->submission) < 0)
			goto bad;
	} else if (strcmp(key, "forward") == 0) {
		if (strcmp(v, "none") != 0 && strchr(v, '@') == NULL)
			goto bad;
		string_set(&a->forward_to, strcmp(v, "none") == 0 ? NULL : v);
	} else if (strcmp(key, "keep_copy") == 0) {
		if (config_parse_bool(v, &b) < 0)
			goto bad;
		a->is_forward_kept = b;
	} else if (strcmp(key, "pop3_retention_days") == 0) {
		if (config_parse_size(v, &n) < 0 || n > 36500)
			goto bad;
		a->pop3_retention_days = (uint32_t)n;
	} else {
		cli_fail("unknown key '%s'", key);
		return -1;
	}
	return 0;
bad:
	cli_fail("key '%s': '%s' is not a valid value", key, v);
	return -1;
}

static json_t *
account_json(const struct store_account *a)
{
	return json_pack("{s:s,s:s?,s:I,s:I,s:b,s:s,s:s,s:s,s:s?,s:b,s:I,"
	    "s:I,s:I}",
	    "address", a->address, "name", a->display_name,
	    "quota_bytes", (json_int_t)a->quota_bytes,
	    "quota_messages", (json_int_t)a->quota_messages,
	    "enabled", a->is_enabled, "imap", switch_name(a->imap),
	    "pop3", switch_name(a->pop3),
	    "submission", switch_name(a->submission),
	    "forward", a->forward_to, "keep_copy", a->is_forward_kept,
	    "pop3_retention_days", (json_int_t)a->pop3_retention_days,
	    "locked_until", (json_int_t)a->locked_until,
	    "created", (json_int_t)a->created);
}

static void
account_print(struct cli_admin *ad, const struct store_account *a)
{
	uint64_t bytes = 0, messages = 0;
	enum store_err err;

	if (ad->is_json) {
		json_t *j = account_json(a);

		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(j);
		return;
	}
	store_account_usage(ad->store, a->id, &bytes, &messages, &err);
	printf("address:      %s\nname:         %s\nenabled:      %s\n"
	    "locked:       %s\nimap:         %s\npop3:         %s\n"
	    "submission:   %s\nquota:        %llu bytes, %llu messages "
	    "(0: unlimited)\nused:         %llu bytes, %llu messages\n"
	    "forward:      %s%s\npop3 retention: %u days (0: forever)\n",
	    a->address, a->display_name ? a->display_name : "",
	    a->is_enabled ? "yes" : "no",
	    a->locked_until > time(NULL) ? "yes (temporarily)" : "no",
	    switch_name(a->imap), switch_name(a->pop3),
	    switch_name(a->submission), (unsigned long long)a->quota_bytes,
	    (unsigned long long)a->quota_messages, (unsigned long long)bytes,
	    (unsigned long long)messages,
	    a->forward_to ? a->forward_to : "none",
	    a->forward_to && a->is_forward_kept ? " (keeping a copy)" : "",
	    a->pop3_retention_days);
}

/* Sets a new password and its SCRAM secret from the terminal or stdin. */
static int
password_set(struct store_account *a)
{
	char *pw = cli_password_read("Password: ");

	if (pw == NULL)
		return -1;
	free(a->password_hash);
	free(a->scram_sha256);
	a->password_hash = auth_password_hash(pw);
	a->scram_sha256 = auth_scram_secret(pw);
	secret_wipe(pw, strlen(pw));
	free(pw);
	if (a->password_hash == NULL) {
		cli_fail("cannot hash the password (libcrypt failed)");
		return -1;
	}
	return 0;
}

static int
user_add(struct cli_admin *ad)
{
	struct store_account a = {
		.is_enabled = true,
		.imap = STORE_SWITCH_DEFAULT,
		.pop3 = STORE_SWITCH_DEFAULT,
		.submission = STORE_SWITCH_DEFAULT,
	};
	enum store_err err;
	int rc = CLI_EXIT_FAIL;

	a.address = xstrdup(ad->argv[0]);
	if (strchr(a.address, '@') == NULL) {
		cli_fail("'%s' is not an address (user@domain)", a.address);
		goto out;
	}
	for (int i = 1; i < ad->argc; i++) {
		if (account_set(&a, ad->argv[i]) < 0) {
			rc = CLI_EXIT_USAGE;
			goto out;
		}
	}
	if (password_set(&a) < 0)
		goto out;
	if (store_account_add(ad->store, &a, &err) < 0) {
		cli_fail("cannot add %s: %s", a.address,
		    err == STORE_EXISTS ? "it exists already" :
		    err == STORE_NOT_FOUND ? "its domain is not ours "
		    "(postern domain add)" : store_err_text(err));
		goto out;
	}
	printf("user %s added\n", a.address);
	rc = CLI_EXIT_OK;
out:
	store_account_deinit(&a);
	return rc;
}

static int
user_list(struct cli_admin *ad)
{
	struct store_account *list = NULL;
	size_t n = 0;
	enum store_err err;
	json_t *arr;

	if (ad->argc == 1 && !is_store_domain_local(ad->store, ad->argv[0]))
		return cli_fail("cannot list users: no such domain %s",
		    ad->argv[0]);
	arr = json_array();
	if (store_account_list(ad->store, ad->argc ? ad->argv[0] : NULL,
	    &list, &n, &err) < 0) {
		json_decref(arr);
		return cli_fail("cannot list users: %s", err == STORE_NOT_FOUND ?
		    "no such domain" : store_err_text(err));
	}
	for (size_t i = 0; i < n; i++) {
		if (ad->is_json)
			json_array_append_new(arr, account_json(&list[i]));
		else
			printf("%s%s\n", list[i].address, list[i].is_enabled ?
			    "" : " (disabled)");
	}
	if (ad->is_json) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		putchar('\n');
	}
	json_decref(arr);
	store_account_list_free(&list, n);
	return CLI_EXIT_OK;
}

/* Loads the account named by argv[0], changes it with change(), saves. */
static int
user_change(struct cli_admin *ad, const char *verb)
{
	struct store_account a;
	enum store_err err;
	int rc = CLI_EXIT_FAIL;

	if (store_account_get(ad->store, ad->argv[0], &a, &err) < 0)
		return cli_fail("%s: %s", ad->argv[0], err == STORE_NOT_FOUND ?
		    "no such user" : store_err_text(err));
	if (strcmp(verb, "show") == 0) {
		account_print(ad, &a);
		store_account_deinit(&a);
		return CLI_EXIT_OK;
	}
	if (strcmp(verb, "passwd") == 0) {
		if (password_set(&a) < 0)
			goto out;
	} else if (strcmp(verb, "lock") == 0) {
		long minutes = ad->argc > 1 ? strtol(ad->argv[1], NULL, 10) :
		    60L * 24 * 365 * 100;

		if (minutes <= 0) {
			rc = CLI_EXIT_USAGE;
			cli_fail("'%s' is not a number of minutes",
			    ad->argv[1]);
			goto out;
		}
		a.locked_until = (int64_t)time(NULL) + minutes * 60;
	} else if (strcmp(verb, "unlock") == 0) {
		a.locked_until = 0;
	} else {
		for (int i = 1; i < ad->argc; i++) {
			if (account_set(&a, ad->argv[i]) < 0) {
				rc = CLI_EXIT_USAGE;
				goto out;
			}
		}
	}
	if (store_account_update(ad->store, &a, &err) < 0) {
		cli_fail("cannot change %s: %s", a.address,
		    store_err_text(err));
		goto out;
	}
	printf("user %s: %s done\n", a.address, verb);
	rc = CLI_EXIT_OK;
out:
	store_account_deinit(&a);
	return rc;
}

static int
user_run(struct cli_admin *ad, const char *verb)
{
	enum store_err err;

	if (strcmp(verb, "list") == 0 && ad->argc <= 1)
		return user_list(ad);
	if (ad->argc < 1)
		goto usage;
	if (strcmp(verb, "add") == 0)
		return user_add(ad);
	if (strcmp(verb, "del") == 0 && ad->argc == 1) {
		if (store_account_del(ad->store, ad->argv[0], &err) < 0)
			return cli_fail("cannot delete %s: %s", ad->argv[0],
			    err == STORE_NOT_FOUND ? "no such user" :
			    store_err_text(err));
		printf("user %s deleted\n", ad->argv[0]);
		return CLI_EXIT_OK;
	}
	if ((strcmp(verb, "show") == 0 || strcmp(verb, "passwd") == 0 ||
	    strcmp(verb, "unlock") == 0) && ad->argc == 1)
		return user_change(ad, verb);
	if ((strcmp(verb, "lock") == 0 && ad->argc <= 2) ||
	    (strcmp(verb, "set") == 0 && ad->argc >= 2))
		return user_change(ad, verb);
usage:
	fprintf(stderr, "usage: %s\n", usage);
	return CLI_EXIT_USAGE;
}

int
cli_user(int argc, char **argv)
{
	return cli_admin_main(argc, argv, usage, user_run);
}
