/*
 * http_autoconfig: client autoconfiguration for every domain we serve:
 * Thunderbird's autoconfig (config-v1.1.xml), Outlook's Autodiscover
 * (the 2006 POX "outlook" response schema, and the JSON v1 redirect that
 * newer Outlook asks first), and Apple's .mobileconfig profile. Every
 * answer names only what this server offers: the hostname of [server],
 * the ports and TLS kinds of the configured listeners, implicit TLS first
 * (RFC 8314 §3, §4.1), and the full address as the user name. No password
 * is ever put into a profile.
 */
#include "http/http_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "lib/util.h"
#include "store/store.h"

/* RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its brackets. */
#define ADDRESS_MAX 254
/* Listeners of one kind listed at most (a config may have many). */
#define OFFERS_MAX 8

/* A listener a client may use, as the answers name it. */
struct offer {
	unsigned port;
	bool is_implicit;	/* else STARTTLS */
};

struct offers {
	struct offer imap[OFFERS_MAX], pop3[OFFERS_MAX], smtp[OFFERS_MAX];
	size_t nimap, npop3, nsmtp;
};

/* Listeners of proto with TLS (a plaintext listener is not offered:
 * without TLS postern takes no password, DESIGN.md Security posture),
 * implicit TLS first. */
static size_t
offers_of(struct http_session *s, enum config_proto proto, struct offer *out)
{
	const struct config *cfg = s->cfg;
	size_t n = 0;

	for (int pass = 0; pass < 2; pass++) {
		enum config_tls want = pass == 0 ? CONFIG_TLS_IMPLICIT :
		    CONFIG_TLS_STARTTLS;

		for (size_t i = 0; i < cfg->nlisteners && n < OFFERS_MAX;
		    i++) {
			const struct config_listener *l = &cfg->listeners[i];

			if (l->proto != proto || l->tls != want)
				continue;
			out[n].port = net_conn_listener_port(s->conn, l);
			out[n].is_implicit = want == CONFIG_TLS_IMPLICIT;
			n++;
		}
	}
	return n;
}

static void
offers_get(struct http_session *s, struct offers *o)
{
	o->nimap = offers_of(s, CONFIG_PROTO_IMAP, o->imap);
	o->npop3 = offers_of(s, CONFIG_PROTO_POP3, o->pop3);
	o->nsmtp = offers_of(s, CONFIG_PROTO_SUBMISSION, o->smtp);
}

static bool
is_domain_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '.';
}

/* A domain as the store names it: letters, digits, '-' and '.', lower
 * case, at most 253 bytes; NULL otherwise. Takes n bytes of s. */
static char *
domain_clean(const char *s, size_t n)
{
	char *d;

	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!is_domain_char(s[i]))
			return NULL;
	}
	d = xstrndup(s, n);
	for (char *p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* An address from the request: local@domain, at most ADDRESS_MAX bytes,
 * nothing at or below space, the domain a plain host name. The local part
 * may hold anything else (it is escaped wherever it is written). Returns
 * the domain (lower case; caller frees), or NULL. */
static char *
address_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t n = strlen(addr);

	if (at == NULL || at == addr || n > ADDRESS_MAX)
		return NULL;
	for (const char *p = addr; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return NULL;
	}
	return domain_clean(at + 1, strlen(at + 1));
}

/* The domain a request asks about: the address's, else the Host's
 * without its port and an "autoconfig." or "autodiscover." label. */
static char *
host_domain(const struct http_request *req)
{
	const char *h = req->host;
	size_t n;

	if (h == NULL)
		return NULL;
	n = strcspn(h, ":");
	if (n > 11 && strncasecmp(h, "autoconfig.", 11) == 0) {
		h += 11;
		n -= 11;
	} else if (n > 13 && strncasecmp(h, "autodiscover.", 13) == 0) {
		h += 13;
		n -= 13;
	}
	return domain_clean(h, n);
}

/* Answers 400 or 404 and returns false unless domain is one of ours. */
static bool
is_domain_served(struct http_session *s, const struct http_request *req,
    const char *domain)
{
	if (domain == NULL) {
		http_respond_error(s, req, 400, "Say which address to set up "
		    "(emailaddress=you@example.com).", NULL);
		return false;
	}
	if (!is_store_domain_local(s->ctx->store, domain)) {
		http_respond_error(s, req, 404, "This server does not serve "
		    "mail for that domain.", NULL);
		return false;
	}
	return true;
}

/* A query value that must be an address when present: 400 when it is
 * not. Sets *addr_out (caller frees; NULL when absent). */
static bool
query_address(struct http_session *s, const struct http_request *req,
    const char *key, char **addr_out, char **domain_out)
{
	bool is_bad;
	char *addr = http_query_get(req->query, key, &is_bad);

	*addr_out = NULL;
	*domain_out = NULL;
	if (addr == NULL && !is_bad)
		return true;
	if (addr == NULL) {
		http_respond_error(s, req, 400, "The address is not "
		    "percent-encoded right.", NULL);
		return false;
	}
	*domain_out = address_domain(addr);
	if (*domain_out == NULL) {
		free(addr);
		http_respond_error(s, req, 400, "The address is not an "
		    "address like you@example.com.", NULL);
		return false;
	}
	*addr_out = addr;
	return true;
}

static void
respond_body(struct http_session *s, const struct http_request *req,
    const char *type, struct http_str *b, const char *extra)
{
	struct http_response r = {
		.status = 200,
		.type = type,
		.body = b->data,
		.len = b->len,
		.extra = extra,
	};

	http_respond(s, req, &r);
}

/* ---- Thunderbird ------------------------------------------------------ */

static void
tb_server(struct http_str *b, const char *tag, const char *type,
    const char *host, const struct offer *o, const char *user)
{
	http_str_printf(b, "    <%s type=\"%s\">\n      <hostname>", tag, type);
	http_str_xml(b, host);
	http_str_printf(b, "</hostname>\n      <port>%u</port>\n"
	    "      <socketType>%s</socketType>\n"
	    "      <authentication>password-cleartext</authentication>\n"
	    "      <username>", o->port, o->is_implicit ? "SSL" : "STARTTLS");
	http_str_xml(b, user);
	http_str_printf(b, "</username>\n    </%s>\n", tag);
}

/* https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat;
 * asked at autoconfig.DOMAIN/mail/config-v1.1.xml and at
 * DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml, with
 * ?emailaddress= (optional). */
void
http_autoconfig_thunderbird(struct http_session *s,
    const struct http_request *req)
{
	struct http_str b = { 0 };
	struct offers o;
	char *addr, *domain;
	const char *user;

	if (!query_address(s, req, "emailaddress", &addr, &domain))
		return;
	if (domain == NULL)
		domain = host_domain(req);
	if (!is_domain_served(s, req, domain))
		goto out;
	offers_get(s, &o);
	/* Thunderbird fills in what the user typed. */
	user = addr != NULL ? addr : "%EMAILADDRESS%";
	http_str_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<clientConfig version=\"1.1\">\n  <emailProvider id=\"");
	http_str_xml(&b, domain);
	http_str_printf(&b, "\">\n    <domain>");
	http_str_xml(&b, domain);
	http_str_printf(&b, "</domain>\n    <displayName>");
	http_str_xml(&b, domain);
	http_str_printf(&b, "</displayName>\n    <displayShortName>");
	http_str_xml(&b, domain);
	http_str_printf(&b, "</displayShortName>\n");
	for (size_t i = 0; i < o.nimap; i++)
		tb_server(&b, "incomingServer", "imap", s->cfg->hostname,
		    &o.imap[i], user);
	for (size_t i = 0; i < o.npop3; i++)
		tb_server(&b, "incomingServer", "pop3", s->cfg->hostname,
		    &o.pop3[i], user);
	for (size_t i = 0; i < o.nsmtp; i++)
		tb_server(&b, "outgoingServer", "smtp", s->cfg->hostname,
		    &o.smtp[i], user);
	http_str_printf(&b, "  </emailProvider>\n</clientConfig>\n");
	respond_body(s, req, "application/xml; charset=utf-8", &b, NULL);
out:
	http_str_free(&b);
	free(addr);
	free(domain);
}

/* ---- Outlook ---------------------------------------------------------- */

/* The text of the first <EMailAddress> element of an Autodiscover request
 * (https://learn.microsoft.com/exchange/client-developer/web-service-
 * reference/emailaddress-pox), with the five predefined entities decoded;
 * NULL when there is none or it is not plain text. Only this element is
 * read: the body is bounded by [limits] http_body_size, the value by
 * ADDRESS_MAX, and no XML library is needed for one element. */
static char *
autodiscover_address(const char *body, size_t len)
{
	static const char open[] = "<EMailAddress>", close[] =
	    "</EMailAddress>";
	const char *start = memmem(body, len, open, sizeof(open) - 1);
	const char *end;
	char *out, *o;

	if (start == NULL)
		return NULL;
	start += sizeof(open) - 1;
	end = memmem(start, len - (size_t)(start - body), close,
	    sizeof(close) - 1);
	if (end == NULL)
		return NULL;
	while (start < end && isspace((unsigned char)*start))
		start++;
	while (end > start && isspace((unsigned char)end[-1]))
		end--;
	if (end == start || end - start > ADDRESS_MAX * 6)
		return NULL;
	out = o = xmalloc((size_t)(end - start) + 1);
	for (const char *p = start; p < end; p++) {
		static const struct { const char *ent; char c; } ents[] = {
			{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
			{ "&quot;", '"' }, { "&apos;", '\'' },
		};
		size_t k;

		if (*p == '<' || *p == '\0') {
			free(out);
			return NULL;
		}
		if (*p != '&') {
			*o++ = *p;
			continue;
		}
		for (k = 0; k < ARRAY_LEN(ents); k++) {
			size_t n = strlen(ents[k].ent);

			if ((size_t)(end - p) >= n &&
			    memcmp(p, ents[k].ent, n) == 0) {
				*o++ = ents[k].c;
				p += n - 1;
				break;
			}
		}
		if (k == ARRAY_LEN(ents)) {
			free(out);
			return NULL;
		}
	}
	*o = '\0';
	return out;
}

static void
ad_protocol(struct http_str *b, const char *type, const char *host,
    const struct offer *o, const char *addr)
{
	http_str_printf(b, "      <Protocol>\n        <Type>%s</Type>\n"
	    "        <Server>", type);
	http_str_xml(b, host);
	http_str_printf(b, "</Server>\n        <Port>%u</Port>\n"
	    "        <LoginName>", o->port);
	http_str_xml(b, addr);
	http_str_printf(b, "</LoginName>\n"
	    "        <DomainRequired>off</DomainRequired>\n"
	    "        <SPA>off</SPA>\n"
	    "        <SSL>on</SSL>\n"
	    "        <Encryption>%s</Encryption>\n"
	    "        <AuthRequired>on</AuthRequired>\n"
	    "      </Protocol>\n", o->is_implicit ? "SSL" : "TLS");
}

/* POST /autodiscover/autodiscover.xml: the "outlook" response schema
 * (2006a) with the best IMAP and SMTP (submission) listener. */
void
http_autodiscover_xml(struct http_session *s, const struct http_request *req)
{
	struct http_str b = { 0 };
	struct offers o;
	char *addr = autodiscover_address(req->body ? req->body : "",
	    req->body_len);
	char *domain = addr != NULL ? address_domain(addr) : NULL;

	if (addr == NULL || domain == NULL) {
		http_respond_error(s, req, 400, "The request has no "
		    "<EMailAddress> holding an address like "
		    "you@example.com.", NULL);
		goto out;
	}
	if (!is_domain_served(s, req, domain))
		goto out;
	offers_get(s, &o);
	if (o.nimap == 0 && o.nsmtp == 0) {
		http_respond_error(s, req, 404, "This server has no IMAP or "
		    "submission listener with TLS.", NULL);
		goto out;
	}
	http_str_printf(&b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	    "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/"
	    "autodiscover/responseschema/2006\">\n"
	    "  <Response xmlns=\"http://schemas.microsoft.com/exchange/"
	    "autodiscover/outlook/responseschema/2006a\">\n"
	    "    <User>\n      <DisplayName>");
	http_str_xml(&b, addr);
	http_str_printf(&b, "</DisplayName>\n    </User>\n    <Account>\n"
	    "      <AccountType>email</AccountType>\n"
	    "      <Action>settings</Action>\n");
	if (o.nimap > 0)
		ad_protocol(&b, "IMAP", s->cfg->hostname, &o.imap[0], addr);
	if (o.nsmtp > 0)
		ad_protocol(&b, "SMTP", s->cfg->hostname, &o.smtp[0], addr);
	http_str_printf(&b, "    </Account>\n  </Response>\n</Autodiscover>\n");
	respond_body(s, req, "application/xml; charset=utf-8", &b, NULL);
out:
	http_str_free(&b);
	free(addr);
	free(domain);
}

/* The https URL of this server's first HTTPS listener, or NULL. */
static char *
https_base(struct http_session *s)
{
	const struct config *cfg = s->cfg;

	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct config_listener *l = &cfg->listeners[i];
		unsigned port;

		if (l->proto != CONFIG_PROTO_HTTP ||
		    l->tls != CONFIG_TLS_IMPLICIT || l->is_metrics)
			continue;
		port = net_conn_listener_port(s->conn, l);
		if (port == 443)
			return xasprintf("https://%s", cfg->hostname);
		return xasprintf("https://%s:%u", cfg->hostname, port);
	}
	return NULL;
}

/* GET /autodiscover/autodiscover.json?Email=A&Protocol=AutodiscoverV1 or
 * /autodiscover/autodiscover.json/v1.0/A?Protocol=AutodiscoverV1: where
 * the POX Autodiscover of the address is (as Exchange and mox answer). */
void
http_autodiscover_json(struct http_session *s,
    const struct http_request *req)
{
	static const char v1[] = "/autodiscover/autodiscover.json/v1.0/";
	struct http_str b = { 0 };
	char *addr = NULL, *domain = NULL, *proto = NULL, *base = NULL;

	proto = http_query_get(req->query, "Protocol", NULL);
	if (proto == NULL || strcasecmp(proto, "AutodiscoverV1") != 0) {
		http_respond_error(s, req, 400, "Only Protocol="
		    "AutodiscoverV1 is served.", NULL);
		goto out;
	}
	if (strncasecmp(req->path, v1, sizeof(v1) - 1) == 0) {
		const char *a = req->path + sizeof(v1) - 1;

		/* The address is the rest of the path, percent-encoded. */
		addr = http_percent_decode(a, strlen(a), false);
	} else {
		addr = http_query_get(req->query, "Email", NULL);
	}
	domain = addr != NULL ? address_domain(addr) : NULL;
	if (domain == NULL) {
		http_respond_error(s, req, 400, "Say which address to set up "
		    "(Email=you@example.com).", NULL);
		goto out;
	}
	if (!is_domain_served(s, req, domain))
		goto out;
	base = https_base(s);
	if (base == NULL) {
		http_respond_error(s, req, 404, "This server has no HTTPS "
		    "listener for Autodiscover.", NULL);
		goto out;
	}
	http_str_printf(&b, "{\"Protocol\": \"AutodiscoverV1\", \"Url\": \"");
	http_str_json(&b, base);
	http_str_printf(&b, "/autodiscover/autodiscover.xml\"}\n");
	respond_body(s, req, "application/json; charset=utf-8", &b, NULL);
out:
	http_str_free(&b);
	free(addr);
	free(domain);
	free(proto);
	free(base);
}

/* ---- Apple ------------------------------------------------------------ */

/* A UUID from a hash of what (RFC 9562 §5.8 layout, "custom" version 8):
 * the same address gets the same profile, so installing it again updates
 * the account instead of adding a second. */
static void
uuid_of(const char *what, const char *addr, char out[37])
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char h[AUTH_SHA256_LEN];
	char *msg = xasprintf("postern:mobileconfig:%s:%s", what, addr);
	size_t o = 0;

	for (char *p = msg; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	auth_sha256(msg, strlen(msg), h);
	free(msg);
	h[6] = (unsigned char)((h[6] & 0x0f) | 0x80);
	h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[h[i] >> 4];
		out[o++] = hex[h[i] & 15];
	}
	out[o] = '\0';
}

static void
plist_string(struct http_str *b, const char *key, const char *value)
{
	http_str_printf(b, "\t\t\t<key>%s</key>\n\t\t\t<string>", key);
	http_str_xml(b, value);
	http_str_add(b, "</string>\n", 10);
}

/* GET /mobileconfig?email=A: a configuration profile (Apple's
 * Configuration Profile Reference, com.apple.mail.managed) with the best
 * IMAP and SMTP listener; the device asks for the password. Signed (PKCS#7)
 * when the server has a certificate. */
void
http_mobileconfig(struct http_session *s, const struct http_request *req)
{
	struct http_str b = { 0 }, disp = { 0 };
	struct offers o;
	char *addr, *domain;
	char account_uuid[37], profile_uuid[37];
	const char *host = s->cfg->hostname;

	if (!query_address(s, req, "email", &addr, &domain))
		return;
	if (addr == NULL) {
		http_respond_error(s, req, 400, "Say which address to set up "
		    "(email=you@example.com).", NULL);
		goto out;
	}
	if (!is_domain_served(s, req, domain))
		goto out;
	offers_get(s, &o);
	if (o.nimap == 0 || o.nsmtp == 0) {
		http_respond_error(s, req, 404, "This server has no IMAP and "
		    "submission listeners with TLS to put in a profile.",
		    NULL);
		goto out;
	}
	uuid_of("account", addr, account_uuid);
	uuid_of("profile", addr, profile_uuid);
	http_str_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
	    "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
	    "<plist version=\"1.0\">\n<dict>\n"
	    "\t<key>PayloadContent</key>\n\t<array>\n\t\t<dict>\n");
	plist_string(&b, "EmailAccountDescription", addr);
	plist_string(&b, "EmailAccountType", "EmailTypeIMAP");
	plist_string(&b, "EmailAddress", addr);
	plist_string(&b, "IncomingMailServerAuthentication",
	    "EmailAuthPassword");
	plist_string(&b, "IncomingMailServerHostName", host);
	http_str_printf(&b, "\t\t\t<key>IncomingMailServerPortNumber</key>\n"
	    "\t\t\t<integer>%u</integer>\n"
	    "\t\t\t<key>IncomingMailServerUseSSL</key>\n\t\t\t<true/>\n",
	    o.imap[0].port);
	plist_string(&b, "IncomingMailServerUsername", addr);
	plist_string(&b, "OutgoingMailServerAuthentication",
	    "EmailAuthPassword");
	plist_string(&b, "OutgoingMailServerHostName", host);
	http_str_printf(&b, "\t\t\t<key>OutgoingMailServerPortNumber</key>\n"
	    "\t\t\t<integer>%u</integer>\n"
	    "\t\t\t<key>OutgoingMailServerUseSSL</key>\n\t\t\t<true/>\n",
	    o.smtp[0].port);
	plist_string(&b, "OutgoingMailServerUsername", addr);
	http_str_printf(&b, "\t\t\t<key>OutgoingPasswordSameAsIncomingPassword"
	    "</key>\n\t\t\t<true/>\n");
	plist_string(&b, "PayloadDescription", "Mail account");
	plist_string(&b, "PayloadDisplayName", addr);
	http_str_printf(&b, "\t\t\t<key>PayloadIdentifier</key>\n"
	    "\t\t\t<string>postern.mail.%s</string>\n", account_uuid);
	plist_string(&b, "PayloadType", "com.apple.mail.managed");
	plist_string(&b, "PayloadUUID", account_uuid);
	http_str_printf(&b, "\t\t\t<key>PayloadVersion</key>\n"
	    "\t\t\t<integer>1</integer>\n\t\t</dict>\n\t</array>\n");
	http_str_printf(&disp, "Mail: %s", addr);
	http_str_printf(&b, "\t<key>PayloadDisplayName</key>\n\t<string>");
	http_str_xml(&b, disp.data);
	http_str_printf(&b, "</string>\n"
	    "\t<key>PayloadIdentifier</key>\n"
	    "\t<string>postern.profile.%s</string>\n"
	    "\t<key>PayloadRemovalDisallowed</key>\n\t<false/>\n"
	    "\t<key>PayloadType</key>\n\t<string>Configuration</string>\n"
	    "\t<key>PayloadUUID</key>\n\t<string>%s</string>\n"
	    "\t<key>PayloadVersion</key>\n\t<integer>1</integer>\n"
	    "</dict>\n</plist>\n", profile_uuid, profile_uuid);
	{
		char extra[300];
		unsigned char *der;
		size_t der_len;

		/* Signed with our certificate (the one naming the host
		 * name) when there is one: the device shows the profile as
		 * coming from this server, "Verified" once the certificate
		 * is a real one. OpenSSL stays in net (net_conn_sign). */
		if (net_conn_sign(s->conn, host, b.data, b.len, &der,
		    &der_len) == 0) {
			http_str_free(&b);
			b.data = (char *)der;
			b.len = b.size = der_len;
		}
		/* domain is letters, digits, '-' and '.': safe in a
		 * quoted filename. */
		snprintf(extra, sizeof(extra), "Content-Disposition: "
		    "attachment; filename=\"%s.mobileconfig\"\r\n", domain);
		respond_body(s, req, "application/x-apple-aspen-config", &b,
		    extra);
	}
out:
	http_str_free(&b);
	http_str_free(&disp);
	free(addr);
	free(domain);
}
