/*
 * fuzz_autoconfig: the answers `postern doctor client` reads from a
 * server it does not know (cli_autoconfig_parse() in
 * src/cli/cli_autoconfig.c): a Thunderbird clientConfig and an Outlook
 * POX Autodiscover response.
 *
 * Input: byte 0: bit 0 Outlook, bits 1-4 how many servers the caller has
 * room for (0-15); the rest: the document (not NUL-terminated).
 *
 * Checked: no more servers than room; each has IMAP, POP3 or submission,
 * a host name of 1-253 letters, digits, '-' and '.' not starting with
 * '.' or '-', a port from 1 to 65535 and a known TLS kind; nothing is
 * read past the document (ASan), and the same document gives the same
 * servers each time.
 *
 * fuzz-sources: src/cli/cli_autoconfig.c
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_autoconfig: invariant broken: %s\n", what);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cli_mail_server a[16], b[16];
	bool is_outlook;
	size_t room, n, m;
	char *doc;

	if (size < 1)
		return 0;
	is_outlook = data[0] & 1;
	room = (data[0] >> 1) & 15;
	/* An exact-size copy, so ASan sees any read past its end. */
	doc = malloc(size - 1 > 0 ? size - 1 : 1);
	memcpy(doc, data + 1, size - 1);
	n = cli_autoconfig_parse(doc, size - 1, is_outlook, "example.com", a,
	    room);
	check(n <= room, "no more servers than room");
	for (size_t i = 0; i < n; i++) {
		size_t len = strnlen(a[i].host, sizeof(a[i].host));

		check(a[i].proto == CONFIG_PROTO_IMAP ||
		    a[i].proto == CONFIG_PROTO_POP3 ||
		    a[i].proto == CONFIG_PROTO_SUBMISSION, "protocol");
		check(len >= 1 && len <= 253, "host length");
		check(a[i].host[0] != '.' && a[i].host[0] != '-', "host start");
		for (size_t k = 0; k < len; k++)
			check(isalnum((unsigned char)a[i].host[k]) ||
			    a[i].host[k] == '-' || a[i].host[k] == '.',
			    "host characters");
		check(a[i].port >= 1, "port");
		check(a[i].tls == CONFIG_TLS_NONE ||
		    a[i].tls == CONFIG_TLS_STARTTLS ||
		    a[i].tls == CONFIG_TLS_IMPLICIT, "tls kind");
	}
	m = cli_autoconfig_parse(doc, size - 1, is_outlook, "example.com", b,
	    room);
	check(m == n && memcmp(a, b, n * sizeof(a[0])) == 0, "same twice");
	free(doc);
	return 0;
}
