/*
 * fuzz_smtp_params: the arguments of MAIL and RCPT (src/smtp/smtp_address.c:
 * the path, RFC 5321 §4.1.2, and its ESMTP parameters), the DSN parameters
 * among them (RFC 3461 §4: RET, ENVID, NOTIFY, ORCPT, whose values are
 * xtext) and how the queue reads them back (src/queue/queue_dsn.c) before
 * relaying them to the next hop.
 *
 * Input: lines; each is parsed as the argument of MAIL ("FROM:...") and
 * of RCPT ("TO:...") with the parameter checks of smtp_cmd_mail.c, and as
 * the argument of EHLO (smtp_helo_check()).
 *
 * Checked: an EHLO argument that passes holds no control character (it is
 * copied into Received:); for a path that parses:
 * - the address has no control character, at most 256 octets, an "@",
 *   a local part of at most 64 and a domain of 1-255 octets (RFC 5321
 *   §4.5.3.1), or is empty (the null path) or "postmaster";
 * - at most SMTP_MAX_PARAMS parameters, keys uppercase letters, digits
 *   and "-";
 * - a DSN parameter that is_smtp_dsn_param_ok() accepts is what may go to
 *   the next hop: printable ASCII without space, "=" only as "K=V", valid
 *   xtext for ENVID and ORCPT's address, NOTIFY "NEVER" or a list of
 *   SUCCESS, FAILURE and DELAY;
 * - the queue reads each accepted value back unchanged from the "K=V K=V"
 *   string smtp_cmd_mail.c stores, and has_queue_notify() agrees with the
 *   NOTIFY list;
 * - no leak.
 *
 * fuzz-sources: src/smtp/smtp_address.c src/queue/queue_dsn.c
 * fuzz-sources: src/queue/queue_text.c
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"
#include "queue/queue_int.h"
#include "smtp/smtp_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_smtp_params: invariant broken: %s\n",
		    what);
		abort();
	}
}

static bool
is_xtext(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '+') {
			if (!isxdigit((unsigned char)s[1]) ||
			    !isxdigit((unsigned char)s[2]))
				return false;
			s += 2;
		} else if (*s < '!' || *s > '~' || *s == '=') {
			return false;
		}
	}
	return true;
}

static void
address_check(const char *a)
{
	size_t n = strlen(a);
	const char *at = strrchr(a, '@');

	/* RFC 5321 §4.1.1.3: "<Postmaster>" without a domain. */
	if (n == 0 || strcmp(a, SMTP_POSTMASTER) == 0)
		return;
	for (size_t i = 0; i < n; i++)
		check((unsigned char)a[i] >= 0x20 && a[i] != 0x7f,
		    "address without control characters");
	check(n <= 256, "address at most 256 octets");
	check(at != NULL, "address has an @");
	check((size_t)(at - a) <= 64, "local part at most 64 octets");
	check(strlen(at + 1) <= 255 && at[1] != '\0',
	    "domain of 1 to 255 octets");
}

/* What one accepted DSN value may be, key by key. */
static void
dsn_value_check(const char *k, const char *v)
{
	for (const char *p = v; *p; p++)
		check(*p > ' ' && *p < 0x7f, "printable ASCII, no space");
	if (strcmp(k, "ENVID") == 0) {
		check(is_xtext(v) && *v != '\0' && strlen(v) <= 100,
		    "ENVID is 1-100 octets of xtext");
	} else if (strcmp(k, "ORCPT") == 0) {
		const char *semi = strchr(v, ';');

		check(semi != NULL && semi > v, "ORCPT has an addr-type");
		for (const char *p = v; p < semi; p++)
			check(isalnum((unsigned char)*p) || *p == '-',
			    "addr-type is an atom");
		check(is_xtext(semi + 1) && semi[1] != '\0',
		    "ORCPT address is xtext");
	} else if (strcmp(k, "NOTIFY") == 0) {
		if (strcasecmp(v, "NEVER") != 0) {
			char *copy = xstrdup(v), *save = NULL;
			size_t n = 0;

			check(*v != ',' && v[strlen(v) - 1] != ',',
			    "no empty NOTIFY item");
			for (char *w = strtok_r(copy, ",", &save); w != NULL;
			    w = strtok_r(NULL, ",", &save), n++)
				check(strcasecmp(w, "SUCCESS") == 0 ||
				    strcasecmp(w, "FAILURE") == 0 ||
				    strcasecmp(w, "DELAY") == 0,
				    "NOTIFY words");
			check(n > 0 && strstr(v, ",,") == NULL,
			    "NOTIFY list well formed");
			free(copy);
		}
	} else if (strcmp(k, "RET") == 0) {
		check(strcasecmp(v, "FULL") == 0 || strcasecmp(v, "HDRS") == 0,
		    "RET is FULL or HDRS");
	}
}

static bool
is_dsn_key(const char *k)
{
	return strcmp(k, "ENVID") == 0 || strcmp(k, "ORCPT") == 0 ||
	    strcmp(k, "NOTIFY") == 0 || strcmp(k, "RET") == 0;
}

static void
one(const char *line, size_t len, const char *prefix)
{
	struct smtp_path p;
	char err[256], *joined = NULL;

	if (smtp_path_parse(line, len, prefix, &p, err, sizeof(err)) < 0) {
		check(strlen(err) >= 4 && err[0] == '5' && err[3] == ' ',
		    "a refusal is a 5xx reply");
		return;
	}
	check(p.address != NULL, "an address, maybe empty");
	address_check(p.address);
	check(p.nparams <= SMTP_MAX_PARAMS, "parameters bounded");
	for (size_t i = 0; i < p.nparams; i++) {
		const char *k = p.params[i].key, *v = p.params[i].value;
		char *next;

		check(*k != '\0', "a key");
		for (const char *c = k; *c; c++)
			check(isupper((unsigned char)*c) ||
			    isdigit((unsigned char)*c) || *c == '-',
			    "key is uppercase");
		if (!is_dsn_key(k) || v == NULL || !is_smtp_dsn_param_ok(k, v))
			continue;
		dsn_value_check(k, v);
		/* As smtp_cmd_mail.c keeps them for the queue. */
		next = xasprintf("%s%s%s=%s", joined ? joined : "",
		    joined ? " " : "", k, v);
		free(joined);
		joined = next;
	}
	for (size_t i = 0; joined != NULL && i < p.nparams; i++) {
		const char *k = p.params[i].key, *v = p.params[i].value;
		char buf[600];
		const char *got;
		bool has;

		if (!is_dsn_key(k) || v == NULL ||
		    !is_smtp_dsn_param_ok(k, v) || smtp_path_param(&p, k, &has) != v)
			continue;	/* only the first of a repeated key */
		got = queue_dsn_param(joined, k, buf, sizeof(buf));
		check(got != NULL && strcmp(got, v) == 0,
		    "the queue reads the value back");
		if (strcmp(k, "NOTIFY") == 0) {
			bool never = strcasecmp(v, "NEVER") == 0;

			check(has_queue_notify(joined, "FAILURE") ==
			    (!never && strcasestr(v, "FAILURE") != NULL),
			    "NOTIFY=FAILURE as listed");
			check(has_queue_notify(joined, "DELAY") ==
			    (!never && strcasestr(v, "DELAY") != NULL),
			    "NOTIFY=DELAY as listed");
		}
	}
	free(joined);
	smtp_path_deinit(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < size;) {
		const char *line = (const char *)data + i;
		const char *nl = memchr(line, '\n', size - i);
		size_t len = nl ? (size_t)(nl - line) : size - i;
		char err[256];

		one(line, len, "FROM:");
		one(line, len, "TO:");
		if (smtp_helo_check(line, len, err, sizeof(err)) == 0) {
			for (size_t k = 0; k < len; k++)
				check((unsigned char)line[k] >= 0x20 &&
				    line[k] != 0x7f, "EHLO without controls");
		} else {
			check(strncmp(err, "501 ", 4) == 0, "EHLO refusal");
		}
		i += len + 1;
	}
	return 0;
}
