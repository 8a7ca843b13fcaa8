/*
 * cli_alias: `postern alias add|del|list`: one address delivered to one or
 * more local or external addresses.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "store/store.h"

static const char usage[] = "postern alias add ADDRESS TARGET | "
    "del ADDRESS [TARGET] | list  [-c FILE] [--json]";

static int
alias_list(struct cli_admin *ad)
{
	char **pairs = NULL;
	enum store_err err;
	json_t *arr = json_array();

	if (store_alias_list(ad->store, &pairs, &err) < 0) {
		json_decref(arr);
		return cli_fail("cannot list aliases: %s",
		    store_err_text(err));
	}
	for (char **p = pairs; p[0] != NULL && p[1] != NULL; p += 2) {
		if (ad->is_json)
			json_array_append_new(arr, json_pack("{s:s,s:s}",
			    "address", p[0], "target", p[1]));
		else
			printf("%s -> %s\n", p[0], p[1]);
	}
	if (ad->is_json) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		putchar('\n');
	}
	json_decref(arr);
	store_strings_free(&pairs);
	return CLI_EXIT_OK;
}

static int
alias_run(struct cli_admin *ad, const char *verb)
{
	enum store_err err;

	if (strcmp(verb, "list") == 0 && ad->argc == 0)
		return alias_list(ad);
	if (strcmp(verb, "add") == 0 && ad->argc == 2) {
		if (store_alias_add(ad->store, ad->argv[0], ad->argv[1],
		    &err) < 0)
			return cli_fail("cannot add alias %s: %s", ad->argv[0],
			    err == STORE_NOT_FOUND ? "its domain is not ours "
			    "(postern domain add)" : err == STORE_EXISTS ?
			    "it exists already" : store_err_text(err));
		printf("alias %s -> %s added\n", ad->argv[0], ad->argv[1]);
		return CLI_EXIT_OK;
	}
	if (strcmp(verb, "del") == 0 && (ad->argc == 1 || ad->argc == 2)) {
		if (store_alias_del(ad->store, ad->argv[0],
		    ad->argc == 2 ? ad->argv[1] : NULL, &err) < 0)
			return cli_fail("cannot delete alias %s: %s",
			    ad->argv[0], err == STORE_NOT_FOUND ?
			    "no such alias" : store_err_text(err));
		printf("alias %s deleted\n", ad->argv[0]);
		return CLI_EXIT_OK;
	}
	fprintf(stderr, "usage: %s\n", usage);
	return CLI_EXIT_USAGE;
}

int
cli_alias(int argc, char **argv)
{
	return cli_admin_main(argc, argv, usage, alias_run);
}
