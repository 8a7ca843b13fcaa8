/*
 * cli_domain: `postern domain add|del|list|catchall`.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "store/store.h"

static const char usage[] = "postern domain add DOMAIN | del DOMAIN | "
    "list | catchall DOMAIN ADDRESS|none  [-c FILE] [--json]";

static int
domain_list(struct cli_admin *ad)
{
	char **names = NULL;
	enum store_err err;
	json_t *arr;

	if (store_domain_list(ad->store, &names, &err) < 0)
		return cli_fail("cannot list domains: %s", store_err_text(err));
	if (!ad->is_json) {
		for (char **p = names; *p != NULL; p++)
			printf("%s\n", *p);
	} else {
		arr = json_array();
		for (char **p = names; *p != NULL; p++)
			json_array_append_new(arr, json_string(*p));
		json_dumpf(arr, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(arr);
	}
	store_strings_free(&names);
	return CLI_EXIT_OK;
}

static int
domain_run(struct cli_admin *ad, const char *verb)
{
	enum store_err err;
	const char *domain = ad->argc > 0 ? ad->argv[0] : NULL;

	if (strcmp(verb, "list") == 0 && ad->argc == 0)
		return domain_list(ad);
	if (strcmp(verb, "add") == 0 && ad->argc == 1) {
		if (store_domain_add(ad->store, domain, &err) < 0)
			return cli_fail("cannot add domain %s: %s", domain,
			    err == STORE_EXISTS ? "it exists already" :
			    store_err_text(err));
		printf("domain %s added\n", domain);
		return CLI_EXIT_OK;
	}
	if (strcmp(verb, "del") == 0 && ad->argc == 1) {
		if (store_domain_del(ad->store, domain, &err) < 0)
			return cli_fail("cannot delete domain %s: %s", domain,
			    err == STORE_NOT_FOUND ? "no such domain" :
			    err == STORE_NOT_ALLOWED ? "it still has accounts "
			    "(delete them first)" : store_err_text(err));
		printf("domain %s deleted\n", domain);
		return CLI_EXIT_OK;
	}
	if (strcmp(verb, "catchall") == 0 && ad->argc == 2) {
		const char *target = strcmp(ad->argv[1], "none") == 0 ? NULL :
		    ad->argv[1];

		if (store_domain_catchall_set(ad->store, domain, target,
		    &err) < 0)
			return cli_fail("cannot set the catch-all of %s: %s",
			    domain, err == STORE_NOT_FOUND ? "no such domain" :
			    store_err_text(err));
		printf("catch-all of %s: %s\n", domain,
		    target ? target : "none");
		return CLI_EXIT_OK;
	}
	fprintf(stderr, "usage: %s\n", usage);
	return CLI_EXIT_USAGE;
}

int
cli_domain(int argc, char **argv)
{
	return cli_admin_main(argc, argv, usage, domain_run);
}
