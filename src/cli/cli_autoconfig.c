/*
 * cli_autoconfig: reads the answers mail clients set themselves up from,
 * for `postern doctor client`: Thunderbird's clientConfig
 * (config-v1.1.xml) and Outlook's POX Autodiscover response (the 2006
 * "outlook" schema). A bounded scan for the few elements that matter
 * (server type, host name, port, TLS kind), not an XML parser: the input
 * comes from any server on the Internet, is at most CLI_AUTOCONFIG_MAX
 * bytes, and every value is checked (a host name of letters, digits, '-'
 * and '.'; a port from 1 to 65535) before it is used. Anything else is
 * skipped. Main thread only; no allocation but the caller's array.
 */
#include "cli/cli.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/config.h"

/* The first occurrence of the n bytes of needle in [p, end), or NULL. */
static const char *
find(const char *p, const char *end, const char *needle)
{
	size_t n = strlen(needle);

	for (; p != NULL && (size_t)(end - p) >= n; p++) {
		if (memcmp(p, needle, n) == 0)
			return p;
	}
	return NULL;
}

/* The text of the first <tag>TEXT</tag> in [p, end), trimmed of white
 * space, copied into out (len bytes with the NUL); false when absent or
 * too long. Case matters, as in XML. */
static bool
element_text(const char *p, const char *end, const char *tag, char *out,
    size_t len)
{
	char open[48], close[48];
	const char *a, *b;
	size_t n;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	if ((a = find(p, end, open)) == NULL)
		return false;
	a += strlen(open);
	if ((b = find(a, end, close)) == NULL)
		return false;
	while (a < b && isspace((unsigned char)*a))
		a++;
	while (b > a && isspace((unsigned char)b[-1]))
		b--;
	n = (size_t)(b - a);
	if (n >= len)
		return false;
	memcpy(out, a, n);
	out[n] = '\0';
	return true;
}

/* The value of attribute name="..." in the start tag [p, end). */
static bool
attr_value(const char *p, const char *end, const char *name, char *out,
    size_t len)
{
	char pat[48];
	const char *a, *b;

	snprintf(pat, sizeof(pat), " %s=\"", name);
	if ((a = find(p, end, pat)) == NULL)
		return false;
	a += strlen(pat);
	for (b = a; b < end && *b != '"'; b++)
		;
	if (b >= end || (size_t)(b - a) >= len)
		return false;
	memcpy(out, a, (size_t)(b - a));
	out[b - a] = '\0';
	return true;
}

/* Thunderbird's %EMAILDOMAIN% in a host name is the address's domain;
 * then the name must be a plain host name. */
static bool
host_set(char *host, size_t len, const char *domain)
{
	static const char ph[] = "%EMAILDOMAIN%";
	char *at = strstr(host, ph);
	size_t n;

	if (at != NULL) {
		char rest[CLI_HOST_MAX + 1];

		snprintf(rest, sizeof(rest), "%s", at + sizeof(ph) - 1);
		*at = '\0';
		if (strlen(host) + strlen(domain) + strlen(rest) >= len)
			return false;
		strcat(host, domain);
		strcat(host, rest);
	}
	n = strlen(host);
	if (n == 0 || n > 253 || host[0] == '.' || host[0] == '-')
		return false;
	for (const char *p = host; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
			return false;
	}
	return true;
}

static bool
port_set(const char *s, uint16_t *out)
{
	unsigned long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p))
			return false;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* One <incomingServer type=...> or <outgoingServer type=...>. */
static bool
thunderbird_server(const char *p, const char *end, const char *domain,
    struct cli_mail_server *out)
{
	const char *tag_end = find(p, end, ">");
	char type[16], port[16], sock[16];

	if (tag_end == NULL || !attr_value(p, tag_end, "type", type,
	    sizeof(type)))
		return false;
	if (strcmp(type, "imap") == 0)
		out->proto = CONFIG_PROTO_IMAP;
	else if (strcmp(type, "pop3") == 0)
		out->proto = CONFIG_PROTO_POP3;
	else if (strcmp(type, "smtp") == 0)
		out->proto = CONFIG_PROTO_SUBMISSION;
	else
		return false;
	if (!element_text(tag_end, end, "hostname", out->host,
	    sizeof(out->host)) || !host_set(out->host, sizeof(out->host),
	    domain) || !element_text(tag_end, end, "port", port,
	    sizeof(port)) || !port_set(port, &out->port) ||
	    !element_text(tag_end, end, "socketType", sock, sizeof(sock)))
		return false;
	if (strcmp(sock, "SSL") == 0)
		out->tls = CONFIG_TLS_IMPLICIT;
	else if (strcmp(sock, "STARTTLS") == 0)
		out->tls = CONFIG_TLS_STARTTLS;
	else if (strcmp(sock, "plain") == 0)
		out->tls = CONFIG_TLS_NONE;
	else
		return false;
	return true;
}

/* One <Protocol> of an Outlook response: Type IMAP, POP3 or SMTP;
 * Encryption SSL (implicit) or TLS (STARTTLS), else SSL on/off. */
static bool
outlook_server(const char *p, const char *end, const char *domain,
    struct cli_mail_server *out)
{
	char type[16], port[16], enc[16], ssl[8];

	if (!element_text(p, end, "Type", type, sizeof(type)))
		return false;
	if (strcasecmp(type, "IMAP") == 0)
		out->proto = CONFIG_PROTO_IMAP;
	else if (strcasecmp(type, "POP3") == 0)
		out->proto = CONFIG_PROTO_POP3;
	else if (strcasecmp(type, "SMTP") == 0)
		out->proto = CONFIG_PROTO_SUBMISSION;
	else
		return false;
	if (!element_text(p, end, "Server", out->host, sizeof(out->host)) ||
	    !host_set(out->host, sizeof(out->host), domain) ||
	    !element_text(p, end, "Port", port, sizeof(port)) ||
	    !port_set(port, &out->port))
		return false;
	if (element_text(p, end, "Encryption", enc, sizeof(enc))) {
		if (strcasecmp(enc, "SSL") == 0)
			out->tls = CONFIG_TLS_IMPLICIT;
		else if (strcasecmp(enc, "TLS") == 0)
			out->tls = CONFIG_TLS_STARTTLS;
		else if (strcasecmp(enc, "None") == 0)
			out->tls = CONFIG_TLS_NONE;
		else
			return false;
	} else if (element_text(p, end, "SSL", ssl, sizeof(ssl))) {
		out->tls = strcasecmp(ssl, "off") == 0 ? CONFIG_TLS_NONE :
		    CONFIG_TLS_IMPLICIT;
	} else {
		out->tls = CONFIG_TLS_IMPLICIT;	/* SSL defaults to on */
	}
	return true;
}

size_t
cli_autoconfig_parse(const char *doc, size_t len, bool is_outlook,
    const char *domain, struct cli_mail_server *out, size_t max)
{
	const char *end = doc + (len > CLI_AUTOCONFIG_MAX ?
	    CLI_AUTOCONFIG_MAX : len);
	static const char *const tb[] = { "<incomingServer ",
	    "<outgoingServer " };
	size_t n = 0;

	if (is_outlook) {
		const char *p = doc, *e;

		while (n < max && (p = find(p, end, "<Protocol>")) != NULL &&
		    (e = find(p, end, "</Protocol>")) != NULL) {
			memset(&out[n], 0, sizeof(out[n]));
			if (outlook_server(p, e, domain, &out[n]))
				n++;
			p = e;
		}
		return n;
	}
	for (size_t k = 0; k < 2; k++) {
		const char *p = doc, *e;
		const char *close = k == 0 ? "</incomingServer>" :
		    "</outgoingServer>";

		while (n < max && (p = find(p, end, tb[k])) != NULL &&
		    (e = find(p, end, close)) != NULL) {
			memset(&out[n], 0, sizeof(out[n]));
			if (thunderbird_server(p, e, domain, &out[n]))
				n++;
			p = e;
		}
	}
	return n;
}
