/*
 * cli_dkim: `postern dkim generate DOMAIN [--selector NAME] [--ed25519]`
 * makes the DKIM key (RFC 6376) the queue runner signs the domain's
 * outgoing mail with, and prints the TXT record to publish; `postern dkim
 * show DOMAIN` prints it again. RSA 2048 by default (rsa-sha256, what
 * every verifier knows); --ed25519 for ed25519-sha256 (RFC 8463).
 */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/config.h"
#include "lib/util.h"
#include "net/net.h"
#include "queue/queue.h"
#include "store/store.h"

static const char usage[] = "postern dkim generate DOMAIN [--selector NAME] "
    "[--ed25519] | show DOMAIN  [-c FILE] [--json]";

/* Options of ours, taken out before the shared parser sees argv. */
static const char *selector_opt;
static bool is_ed25519;

/* A selector is a DNS label of our choosing: letters, digits, '-'. */
static bool
is_selector_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || s[0] == '-')
		return false;
	for (; *s != '\0'; s++) {
		if (!isalnum((unsigned char)*s) && *s != '-')
			return false;
	}
	return true;
}

/* The domain, lowercased, when it is one of ours. */
static char *
domain_ours(struct cli_admin *ad, const char *domain)
{
	char *d;

	if (strlen(domain) > 253 || strchr(domain, '/') != NULL ||
	    domain[0] == '.' || !is_store_domain_local(ad->store, domain))
		return NULL;
	d = xstrdup(domain);
	for (char *p = d; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

static int
record_print(struct cli_admin *ad, const char *domain, const char *sel,
    enum net_key_type type, const char *pub)
{
	const char *k = type == NET_KEY_ED25519 ? "ed25519" : "rsa";

	if (ad->is_json) {
		char *name = xasprintf("%s._domainkey.%s", sel, domain);
		char *value = xasprintf("v=DKIM1; k=%s; p=%s", k, pub);
		json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s}", "domain", domain,
		    "selector", sel, "key_type", k, "name", name, "value",
		    value);

		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(j);
		free(name);
		free(value);
		return CLI_EXIT_OK;
	}
	/* One line of zone file; a resolver joins the quoted pieces (RFC
	 * 7208 §3.3 style, 255 bytes a string). */
	printf("%s._domainkey.%s. IN TXT (", sel, domain);
	printf("\"v=DKIM1; k=%s; \"", k);
	for (size_t i = 0, l = strlen(pub); i < l; i += 200)
		printf(" \"%s%.*s\"", i == 0 ? "p=" : "", (int)(l - i < 200 ?
		    l - i : 200), pub + i);
	printf(" )\n");
	return CLI_EXIT_OK;
}

/* Writes "sel\n" to path through a new file beside it, renamed over it:
 * never through a link someone planted at either name. */
static int
selector_write(const char *path, const char *sel)
{
	char *tmp = xasprintf("%s.new", path);
	FILE *f = NULL;
	int fd, rc = -1;

	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd >= 0)
		f = fdopen(fd, "w");
	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		cli_fail("cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fprintf(f, "%s\n", sel) < 0 || fflush(f) != 0 ||
	    fsync(fileno(f)) != 0) {
		cli_fail("cannot write %s: %s", tmp, strerror(errno));
		fclose(f);
		unlink(tmp);
		goto out;
	}
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		cli_fail("cannot install %s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	return rc;
}

/* Makes a key for domain (lowercase, ours) under selector sel and
 * installs it with its selector file. Returns 0 with *pub_out (caller
 * frees), or -1 after printing why. */
static int
key_make(struct cli_admin *ad, const char *domain, const char *sel,
    enum net_key_type type, char **pub_out)
{
	char *dir, *kpath, *spath, *tmp, err[512];
	int rc = -1;

	*pub_out = NULL;
	dir = xasprintf("%s/dkim", ad->cfg->data_dir);
	kpath = queue_dkim_key_path(ad->cfg->data_dir, domain);
	spath = queue_dkim_selector_path(ad->cfg->data_dir, domain);
	tmp = xasprintf("%s.new", kpath);
	/* We run as the server's user already (cli_admin_open), so the
	 * files are its own; and every file is new (O_EXCL, O_NOFOLLOW),
	 * renamed over the old one, so a link planted in dkim/ is replaced,
	 * never written through (issue 15, finding 14). */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		cli_fail("cannot create %s: %s", dir, strerror(errno));
		goto out;
	}
	unlink(tmp);
	if (net_key_generate(type, tmp, pub_out, err, sizeof(err)) < 0) {
		cli_fail("%s", err);
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, kpath) < 0) {
		cli_fail("cannot install %s: %s", kpath, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (selector_write(spath, sel) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0) {
		free(*pub_out);
		*pub_out = NULL;
	}
	free(tmp);
	free(spath);
	free(kpath);
	free(dir);
	return rc;
}

/* A new name each time, so that a new key can be published beside the
 * old one before it takes over. */
static void
selector_default(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, len, "pst%Y%m%d", &tm);
}

static int
dkim_generate(struct cli_admin *ad, const char *domain_arg)
{
	const char *sel = selector_opt;
	enum net_key_type type = is_ed25519 ? NET_KEY_ED25519 : NET_KEY_RSA;
	char *domain, *pub = NULL, def_sel[32];
	int rc = CLI_EXIT_FAIL;

	if ((domain = domain_ours(ad, domain_arg)) == NULL)
		return cli_fail("cannot make a DKIM key for %s: not one of our "
		    "domains (postern domain add)", domain_arg);
	if (sel == NULL) {
		selector_default(def_sel, sizeof(def_sel));
		sel = def_sel;
	}
	if (!is_selector_valid(sel)) {
		free(domain);
		fprintf(stderr, "postern: selector '%s': letters, digits and "
		    "'-' only, at most 63\n", sel);
		return CLI_EXIT_USAGE;
	}
	if (key_make(ad, domain, sel, type, &pub) == 0) {
		if (!ad->is_json)
			printf("DKIM key for %s made (%s, selector %s). "
			    "Publish this record; mail from %s is signed "
			    "from now on:\n", domain, type == NET_KEY_ED25519 ?
			    "ed25519-sha256" : "rsa-sha256", sel, domain);
		rc = record_print(ad, domain, sel, type, pub);
	}
	free(pub);
	free(domain);
	return rc;
}

/* The domain's key as the queue runner reads it: NULL when it has none,
 * else the key with its selector in sel. */
static struct net_key *
key_read(struct cli_admin *ad, const char *domain, char *sel, size_t len)
{
	char *kpath, *spath, err[512];
	struct net_key *key;
	FILE *f;

	sel[0] = '\0';
	kpath = queue_dkim_key_path(ad->cfg->data_dir, domain);
	spath = queue_dkim_selector_path(ad->cfg->data_dir, domain);
	if ((f = fopen(spath, "r")) != NULL) {
		if (fgets(sel, (int)len, f) == NULL)
			sel[0] = '\0';
		sel[strcspn(sel, "\r\n")] = '\0';
		fclose(f);
	}
	key = sel[0] != '\0' ? net_key_load(kpath, err, sizeof(err)) : NULL;
	free(kpath);
	free(spath);
	return key;
}

static int
dkim_show(struct cli_admin *ad, const char *domain_arg)
{
	char *domain, *pub, sel[72];
	struct net_key *key;
	int rc;

	if ((domain = domain_ours(ad, domain_arg)) == NULL)
		return cli_fail("%s is not one of our domains", domain_arg);
	key = key_read(ad, domain, sel, sizeof(sel));
	if (key == NULL) {
		rc = cli_fail("%s has no DKIM key (postern dkim generate %s)",
		    domain, domain);
	} else {
		pub = net_key_public_b64(key);
		rc = record_print(ad, domain, sel, net_key_type_of(key), pub);
		free(pub);
	}
	net_key_free(&key);
	free(domain);
	return rc;
}

int
cli_dkim_record(struct cli_admin *ad, const char *domain, bool is_create,
    char **sel_out, char **value_out, bool *is_created_out)
{
	char sel[72], *pub = NULL;
	enum net_key_type type = NET_KEY_RSA;
	struct net_key *key;

	*sel_out = *value_out = NULL;
	*is_created_out = false;
	key = key_read(ad, domain, sel, sizeof(sel));
	if (key != NULL) {
		pub = net_key_public_b64(key);
		type = net_key_type_of(key);
		net_key_free(&key);
	} else if (is_create) {
		selector_default(sel, sizeof(sel));
		if (key_make(ad, domain, sel, type, &pub) < 0)
			return -1;
		*is_created_out = true;
	} else {
		return -1;
	}
	if (pub == NULL)
		return -1;
	*sel_out = xstrdup(sel);
	*value_out = xasprintf("v=DKIM1; k=%s; p=%s", type == NET_KEY_ED25519 ?
	    "ed25519" : "rsa", pub);
	free(pub);
	return 0;
}

static int
dkim_run(struct cli_admin *ad, const char *verb)
{
	if (strcmp(verb, "generate") == 0 && ad->argc == 1)
		return dkim_generate(ad, ad->argv[0]);
	if (strcmp(verb, "show") == 0 && ad->argc == 1 &&
	    selector_opt == NULL && !is_ed25519)
		return dkim_show(ad, ad->argv[0]);
	fprintf(stderr, "usage: %s\n", usage);
	return CLI_EXIT_USAGE;
}

int
cli_dkim(int argc, char **argv)
{
	char **args = xcalloc((size_t)argc + 1, sizeof(*args));
	int n = 0, rc;

	selector_opt = NULL;
	is_ed25519 = false;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				args[n++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "--ed25519") == 0) {
			is_ed25519 = true;
		} else if (strcmp(argv[i], "--selector") == 0) {
			if (i + 1 >= argc) {
				free(args);
				fprintf(stderr, "usage: %s\n", usage);
				return CLI_EXIT_USAGE;
			}
			selector_opt = argv[++i];
		} else {
			args[n++] = argv[i];
		}
	}
	rc = cli_admin_main(n, args, usage, dkim_run);
	free(args);
	return rc;
}
