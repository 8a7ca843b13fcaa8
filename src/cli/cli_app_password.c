/*
 * cli_app_password: `postern app-password add|list|revoke`: a password
 * per device, generated here and shown once, usable wherever the account
 * password is, optionally limited to some protocols.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>

#include <jansson.h>

#include "auth/auth.h"
#include "lib/util.h"
#include "store/store.h"

static const char usage[] = "postern app-password add ADDRESS NAME "
    "[protocols=imap,pop3,submission] | list ADDRESS | "
    "revoke ADDRESS NAME  [-c FILE] [--json]";

/* 16 letters in four groups: about 75 bits, easy to type on a phone. */
static void
password_generate(char out[20])
{
	static const char letters[] = "abcdefghijkmnpqrstuvwxyz";
	unsigned char rnd[16];
	size_t o = 0;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		panic("no random bytes");
	for (size_t i = 0; i < 16; i++) {
		if (i > 0 && i % 4 == 0)
			out[o++] = '-';
		out[o++] = letters[rnd[i] % (sizeof(letters) - 1)];
	}
	out[o] = '\0';
	secret_wipe(rnd, sizeof(rnd));
}

static int
protocols_parse(const char *arg, uint32_t *out)
{
	char *copy, *tok, *save = NULL;

	if (strncmp(arg, "protocols=", 10) != 0)
		return -1;
	copy = xstrdup(arg + 10);
	*out = 0;
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "imap") == 0)
			*out |= STORE_APP_IMAP;
		else if (strcmp(tok, "pop3") == 0)
			*out |= STORE_APP_POP3;
		else if (strcmp(tok, "submission") == 0 ||
		    strcmp(tok, "smtp") == 0)
			*out |= STORE_APP_SUBMISSION;
		else {
			free(copy);
			return -1;
		}
	}
	free(copy);
	return *out != 0 ? 0 : -1;
}

static char *
protocols_text(uint32_t p)
{
	if (p == 0)
		return xstrdup("all");
	return xasprintf("%s%s%s%s%s", p & STORE_APP_IMAP ? "imap" : "",
	    (p & STORE_APP_IMAP) && (p & ~STORE_APP_IMAP) ? "," : "",
	    p & STORE_APP_POP3 ? "pop3" : "",
	    (p & STORE_APP_POP3) && (p & STORE_APP_SUBMISSION) ? "," : "",
	    p & STORE_APP_SUBMISSION ? "submission" : "");
}

static int
app_add(struct cli_admin *ad, int64_t account)
{
	char password[20];
	uint32_t protocols = 0;
	char *hash;
	enum store_err err;

	if (ad->argc == 3 && protocols_parse(ad->argv[2], &protocols) < 0) {
		cli_fail("'%s': expected protocols=imap,pop3,submission",
		    ad->argv[2]);
		return CLI_EXIT_USAGE;
	}
	password_generate(password);
	hash = auth_password_hash(password);
	if (hash == NULL)
		return cli_fail("cannot hash the password (libcrypt failed)");
	if (store_app_password_add(ad->store, account, ad->argv[1], hash,
	    protocols, &err) < 0) {
		free(hash);
		secret_wipe(password, sizeof(password));
		return cli_fail("cannot add app password '%s': %s",
		    ad->argv[1], err == STORE_EXISTS ? "the account has one "
		    "of that name already" : store_err_text(err));
	}
	free(hash);
	if (ad->is_json)
		printf("{\"name\": \"%s\", \"password\": \"%s\"}\n",
		    ad->argv[1], password);
	else
		printf("app password '%s' for %s: %s\n(shown once: type it "
		    "into the device instead of the account password)\n",
		    ad->argv[1], ad->argv[0], password);
	secret_wipe(password, sizeof(password));
	return CLI_EXIT_OK;
}

static int
app_list(struct cli_admin *ad, int64_t account)
{
	struct store_app_password *list = NULL;
	size_t n = 0;
	enum store_err err;
	json_t *arr = json_array();

	if (store_app_password_list(ad->store, account, &list, &n,
	    &err) < 0) {
		json_decref(arr);
		return cli_fail("cannot list app passwords: %s",
		    store_err_text(err));
	}
	for (size_t i = 0; i < n; i++) {
		char *protos = protocols_text(list[i].protocols);
		char created[32], used[32] = "never";
		time_t t = (time_t)list[i].created;
		struct tm tm;

		strftime(created, sizeof(created), "%Y-%m-%d %H:%M",
		    gmtime_r(&t, &tm));
		if (list[i].last_used != 0) {
			t = (time_t)list[i].last_used;
			strftime(used, sizeof(used), "%Y-%m-%d %H:%M",
			    gmtime_r(&t, &tm));
		}
		if (ad->is_json)
			json_array_append_new(arr, json_pack("{s:s,s:s,s:I,"
			    "s:I,s:s?}", "name", list[i].name, "protocols",
			    protos, "created", (json_int_t)list[i].created,
			    "last_used", (json_int_t)list[i].last_used,
			    "last_address", list[i].last_peer));
		else
			printf("%-20s protocols=%s created=%s last_used=%s%s%s\n",
			    list[i].name, protos, created, used,
			    list[i].last_peer ? " from=" : "",
			    list[i].last_peer ? list[i].last_peer : "");
		free(protos);
	}
	if (ad->is_json) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		putchar('\n');
	}
	json_decref(arr);
	store_app_password_list_free(&list, n);
	return CLI_EXIT_OK;
}

static int
app_run(struct cli_admin *ad, const char *verb)
{
	struct store_account a;
	enum store_err err;
	int rc;

	if (!((strcmp(verb, "add") == 0 && (ad->argc == 2 || ad->argc == 3)) ||
	    (strcmp(verb, "list") == 0 && ad->argc == 1) ||
	    (strcmp(verb, "revoke") == 0 && ad->argc == 2))) {
		fprintf(stderr, "usage: %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	if (store_account_get(ad->store, ad->argv[0], &a, &err) < 0)
		return cli_fail("%s: %s", ad->argv[0], err == STORE_NOT_FOUND ?
		    "no such user" : store_err_text(err));
	if (strcmp(verb, "add") == 0) {
		rc = app_add(ad, a.id);
	} else if (strcmp(verb, "list") == 0) {
		rc = app_list(ad, a.id);
	} else if (store_app_password_revoke(ad->store, a.id, ad->argv[1],
	    &err) < 0) {
		rc = cli_fail("cannot revoke '%s': %s", ad->argv[1],
		    err == STORE_NOT_FOUND ? "no app password of that name" :
		    store_err_text(err));
	} else {
		printf("app password '%s' of %s revoked\n", ad->argv[1],
		    a.address);
		rc = CLI_EXIT_OK;
	}
	store_account_deinit(&a);
	return rc;
}

int
cli_app_password(int argc, char **argv)
{
	return cli_admin_main(argc, argv, usage, app_run);
}
