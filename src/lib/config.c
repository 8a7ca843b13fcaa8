#include "lib/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "lib/util.h"

enum param_kind { COUNT, SIZE, SECONDS };

struct param {
	const char *section;
	const char *key;
	size_t offset;
	uint64_t def, min, max;
	enum param_kind kind;
};

static const struct param params[] = {
#define CONFIG_ROW(section, key, field, def, min, max, kind) \
	{ #section, #key, offsetof(struct config, field), def, min, max, kind },
	CONFIG_PARAMS(CONFIG_ROW)
#undef CONFIG_ROW
};

/* What the inih callbacks need between calls. */
struct load_state {
	struct config *cfg;
	FILE *f;
	int lineno;		/* lines handed to inih so far */
	char err[512];		/* first error, without file and line */
	int err_line;		/* the line err is about */
	bool has_err;
	/* Per listener of cfg: whether "port" was read. A flag, since every
	 * port number from 0 to 65535 is a valid value. */
	bool *has_port;
	size_t nhas_port;
	int oauth_jwks_line;	/* where oauth_jwks was set, or 0 */
	int acme_line;		/* where [acme] enabled was set, or 0 */
	int acme_challenge_line;
};

/* inih cuts section names to this many bytes, terminator included
 * (MAX_SECTION in ini.c). */
#define INI_SECTION_MAX 50

static const char *const proto_names[] = {
	[CONFIG_PROTO_SMTP] = "smtp",
	[CONFIG_PROTO_SUBMISSION] = "submission",
	[CONFIG_PROTO_IMAP] = "imap",
	[CONFIG_PROTO_POP3] = "pop3",
	[CONFIG_PROTO_HTTP] = "http",
};

static const char *const tls_names[] = {
	[CONFIG_TLS_NONE] = "none",
	[CONFIG_TLS_STARTTLS] = "starttls",
	[CONFIG_TLS_IMPLICIT] = "implicit",
};

static const char *const mtasts_mode_names[] = {
	[CONFIG_MTASTS_TESTING] = "testing",
	[CONFIG_MTASTS_ENFORCE] = "enforce",
	[CONFIG_MTASTS_NONE] = "none",
};

bool
is_config_listener_same(const struct config_listener *a,
    const struct config_listener *b)
{
	return strcmp(a->name, b->name) == 0 &&
	    strcmp(a->address, b->address) == 0 && a->port == b->port &&
	    a->proto == b->proto && a->tls == b->tls &&
	    a->is_metrics == b->is_metrics &&
	    a->is_https_redirect == b->is_https_redirect;
}

const char *
config_proto_name(enum config_proto proto)
{
	return proto_names[proto];
}

const char *
config_tls_name(enum config_tls tls)
{
	return tls_names[tls];
}

const char *
config_mtasts_mode_name(enum config_mtasts_mode mode)
{
	return mtasts_mode_names[mode];
}

static void __attribute__((format(printf, 2, 3)))
fail(struct load_state *st, const char *fmt, ...)
{
	va_list ap;

	if (st->has_err)
		return;
	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
	st->err_line = st->lineno;
	st->has_err = true;
}

static int
parse_number(const char *s, uint64_t *out, const char *suffixes,
    const uint64_t *mults)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		const char *p = strchr(suffixes, *end);

		if (p == NULL || end[1] != '\0')
			return -1;
		uint64_t m = mults[p - suffixes];

		if (v > UINT64_MAX / m)
			return -1;
		v *= m;
	}
	*out = v;
	return 0;
}

int
config_parse_size(const char *s, uint64_t *out)
{
	static const uint64_t mults[] = {
		1024, 1024, 1048576, 1048576, 1073741824, 1073741824,
	};

	return parse_number(s, out, "kKmMgG", mults);
}

int
config_parse_seconds(const char *s, uint64_t *out)
{
	static const uint64_t mults[] = { 1, 60, 3600, 86400 };

	return parse_number(s, out, "smhd", mults);
}

int
config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static int
parse_enum(const char *s, const char *const *names, size_t n, int *out)
{
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	return -1;
}

static bool
is_valid_hostname(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (const char *p = s; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
			return false;
	}
	return true;
}

static bool
is_valid_address(const char *s)
{
	unsigned char tmp[16];

	return inet_pton(AF_INET, s, tmp) == 1 ||
	    inet_pton(AF_INET6, s, tmp) == 1;
}

static bool
is_valid_name(const char *s)
{
	if (*s == '\0' || strlen(s) > 64)
		return false;
	for (const char *p = s; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' &&
		    *p != '.')
			return false;
	}
	return true;
}

/* Parses "ADDRESS/PREFIX" (a bare address is the host alone). */
static int
network_parse(const char *s, size_t n, struct config_network *out)
{
	char text[INET6_ADDRSTRLEN + 8];
	const char *slash;
	uint64_t prefix;
	unsigned max;

	if (n == 0 || n >= sizeof(text))
		return -1;
	memcpy(text, s, n);
	text[n] = '\0';
	slash = strchr(text, '/');
	if (slash != NULL)
		text[slash - text] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, text, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, text, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	if (slash == NULL) {
		out->prefix = max;
		return 0;
	}
	if (parse_number(slash + 1, &prefix, "", NULL) < 0 || prefix > max)
		return -1;
	out->prefix = (unsigned)prefix;
	return 0;
}

/* "10.0.0.0/8, 2001:db8::/32 ...", separated by commas or spaces. */
static int
networks_parse(const char *s, struct config_network **out, size_t *nout)
{
	struct config_network *v = NULL;
	size_t n = 0;

	while (*s != '\0') {
		size_t len;

		s += strspn(s, " \t,");
		len = strcspn(s, " \t,");
		if (len == 0)
			break;
		v = xrealloc(v, (n + 1) * sizeof(*v));
		if (network_parse(s, len, &v[n]) < 0) {
			free(v);
			return -1;
		}
		n++;
		s += len;
	}
	free(*out);
	*out = v;
	*nout = n;
	return 0;
}

static bool
is_in_network(const struct config_network *net, int family,
    const unsigned char *addr)
{
	unsigned full = net->prefix / 8, rest = net->prefix % 8;

	if (net->family != family)
		return false;
	if (memcmp(net->addr, addr, full) != 0)
		return false;
	return rest == 0 || ((net->addr[full] ^ addr[full]) &
	    (0xff << (8 - rest)) & 0xff) == 0;
}

/* Is address inside one of the n networks? */
static bool
is_in_networks(const struct config_network *nets, size_t n,
    const char *address)
{
	unsigned char a[16];
	int family = AF_INET;

	if (inet_pton(AF_INET, address, a) != 1) {
		static const unsigned char mapped[12] = {
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
		};

		if (inet_pton(AF_INET6, address, a) != 1)
			return false;
		family = AF_INET6;
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			memmove(a, a + 12, 4);
			family = AF_INET;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (is_in_network(&nets[i], family, a))
			return true;
	}
	return false;
}

bool
is_config_network_trusted(const struct config *cfg, const char *address)
{
	return is_in_networks(cfg->trusted_networks, cfg->ntrusted_networks,
	    address);
}

bool
is_config_spf_skipped(const struct config *cfg, const char *address)
{
	return is_in_networks(cfg->spf_skip_networks,
	    cfg->nspf_skip_networks, address);
}

/* local@domain, printable, no white space: the postmaster key. */
static bool
is_plain_address(const char *s)
{
	const char *at = strrchr(s, '@');

	if (at == NULL || at == s || at[1] == '\0' || strlen(s) > 254)
		return false;
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '<' ||
		    *p == '>')
			return false;
	}
	return true;
}

static void
set_string(char **field, const char *value)
{
	free(*field);
	*field = xstrdup(value);
}

static int
handle_server(struct load_state *st, const char *key, const char *value)
{
	struct config *cfg = st->cfg;
	uint64_t n;

	if (strcmp(key, "hostname") == 0) {
		if (!is_valid_hostname(value))
			fail(st, "key 'hostname': '%s' is not a host name",
			    value);
		set_string(&cfg->hostname, value);
	} else if (strcmp(key, "data_dir") == 0) {
		if (value[0] != '/')
			fail(st, "key 'data_dir': '%s' is not an absolute path",
			    value);
		set_string(&cfg->data_dir, value);
	} else if (strcmp(key, "user") == 0) {
		if (value[0] == '\0')
			fail(st, "key 'user': empty user name");
		set_string(&cfg->user, value);
	} else if (strcmp(key, "workers") == 0) {
		if (parse_number(value, &n, "", NULL) < 0 || n > 256)
			fail(st, "key 'workers': '%s' is not a number from 0 "
			    "to 256", value);
		cfg->workers = (unsigned)n;
	} else if (strcmp(key, "log_level") == 0) {
		if (log_level_parse(value, &cfg->log_level) < 0)
			fail(st, "key 'log_level': '%s' is not one of error, "
			    "warn, info, debug, trace", value);
	} else if (strcmp(key, "syslog") == 0) {
		if (config_parse_bool(value, &cfg->log_syslog) < 0)
			fail(st, "key 'syslog': '%s' is not yes or no", value);
	} else if (strcmp(key, "allow_plaintext_auth") == 0) {
		if (config_parse_bool(value, &cfg->allow_plaintext_auth) < 0)
			fail(st, "key 'allow_plaintext_auth': '%s' is not yes "
			    "or no", value);
	} else if (strcmp(key, "trusted_networks") == 0) {
		if (networks_parse(value, &cfg->trusted_networks,
		    &cfg->ntrusted_networks) < 0)
			fail(st, "key 'trusted_networks': '%s' is not a list "
			    "of networks like 127.0.0.1/32, 10.0.0.0/8, "
			    "2001:db8::/32", value);
	} else if (strcmp(key, "postmaster") == 0) {
		if (!is_plain_address(value))
			fail(st, "key 'postmaster': '%s' is not an address "
			    "like admin@example.com", value);
		set_string(&cfg->postmaster, value);
	} else {
		fail(st, "key '%s': unknown in section [server]", key);
	}
	return 0;
}

static void listener_milters_set(struct load_state *st,
    struct config_listener *l, const char *value);
static int handle_param(struct load_state *st, const char *section,
    const char *key, const char *value);

static bool
is_tls_policy(const char *s, size_t n)
{
	static const char *const names[] = { "none", "may", "encrypt",
	    "verify" };

	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		if (strlen(names[i]) == n && strncmp(s, names[i], n) == 0)
			return true;
	}
	return false;
}

/* "domain:policy domain:policy ...". */
static bool
is_tls_domains(const char *s)
{
	while (*s != '\0') {
		size_t n = strcspn(s, " \t,");
		const char *colon = memchr(s, ':', n);

		if (n > 0 && (colon == NULL || colon == s ||
		    !is_tls_policy(colon + 1, n - (size_t)(colon + 1 - s))))
			return false;
		s += n;
		s += strspn(s, " \t,");
	}
	return true;
}

/* [queue]: the resolver's address, TLS policies, and the numbers of
 * config_params.h. */
static int
handle_queue(struct load_state *st, const char *key, const char *value)
{
	if (strcmp(key, "tls") == 0) {
		if (!is_tls_policy(value, strlen(value)))
			fail(st, "key 'tls': '%s' is not none, may, encrypt or "
			    "verify", value);
		set_string(&st->cfg->queue_tls, value);
		return 0;
	}
	if (strcmp(key, "tls_domains") == 0) {
		if (!is_tls_domains(value))
			fail(st, "key 'tls_domains': '%s' is not a list of "
			    "DOMAIN:POLICY (none, may, encrypt, verify)", value);
		set_string(&st->cfg->queue_tls_domains, value);
		return 0;
	}
	if (strcmp(key, "resolver") == 0) {
		if (!is_valid_address(value))
			fail(st, "key 'resolver': '%s' is not a numeric IPv4 "
			    "or IPv6 address", value);
		set_string(&st->cfg->queue_resolver, value);
		return 0;
	}
	return handle_param(st, "queue", key, value);
}

/* [mta-sts]: the policy's mode and max_age (RFC 8461 §3.2). */
static int
handle_mtasts(struct load_state *st, const char *key, const char *value)
{
	int e;

	if (strcmp(key, "mode") == 0) {
		if (parse_enum(value, mtasts_mode_names,
		    ARRAY_LEN(mtasts_mode_names), &e) < 0)
			fail(st, "key 'mode': '%s' is not testing, enforce or "
			    "none", value);
		else
			st->cfg->mtasts_mode = (enum config_mtasts_mode)e;
		return 0;
	}
	if (strcmp(key, "max_age") == 0)
		return handle_param(st, "mta_sts", key, value);
	fail(st, "key '%s': unknown in section [mta-sts]", key);
	return 0;
}

#define ACME_DIRECTORY_DEFAULT \
	"https://acme-v02.api.letsencrypt.org/directory"

/* [acme]: on/off, where the CA is, who we are to it, which challenge. */
static int
handle_acme(struct load_state *st, const char *key, const char *value)
{
	struct config *cfg = st->cfg;

	if (strcmp(key, "enabled") == 0) {
		if (config_parse_bool(value, &cfg->is_acme) < 0)
			fail(st, "key 'enabled': '%s' is not yes or no", value);
		st->acme_line = st->lineno;
	} else if (strcmp(key, "directory") == 0) {
		if (strncmp(value, "https://", 8) != 0 || value[8] == '\0' ||
		    strlen(value) > 1024 || strpbrk(value, " \t\"\\") != NULL)
			fail(st, "key 'directory': '%s' is not an https:// URL",
			    value);
		set_string(&cfg->acme_directory, value);
	} else if (strcmp(key, "contact") == 0) {
		if (!is_plain_address(value))
			fail(st, "key 'contact': '%s' is not an address like "
			    "admin@example.com", value);
		set_string(&cfg->acme_contact, value);
	} else if (strcmp(key, "ca_file") == 0) {
		if (value[0] != '/')
			fail(st, "key 'ca_file': '%s' is not an absolute path",
			    value);
		set_string(&cfg->acme_ca_file, value);
	} else if (strcmp(key, "caa") == 0) {
		if (value[0] == '\0' || strlen(value) > 253 ||
		    strspn(value, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(value))
			fail(st, "key 'caa': '%s' is not a domain like "
			    "letsencrypt.org", value);
		set_string(&cfg->acme_caa, value);
	} else if (strcmp(key, "challenge") == 0) {
		if (strcmp(value, "http-01") != 0 &&
		    strcmp(value, "tls-alpn-01") != 0)
			fail(st, "key 'challenge': '%s' is not http-01 or "
			    "tls-alpn-01", value);
		set_string(&cfg->acme_challenge, value);
		st->acme_challenge_line = st->lineno;
	} else {
		handle_param(st, "acme", key, value);
	}
	return 0;
}

/* [spf]: check, fail, skip_networks, and the numbers of
 * config_params.h. */
static int
handle_spf(struct load_state *st, const char *key, const char *value)
{
	if (strcmp(key, "check") == 0) {
		if (config_parse_bool(value, &st->cfg->is_spf_check) < 0)
			fail(st, "key 'check': '%s' is not yes or no", value);
		return 0;
	}
	if (strcmp(key, "fail") == 0) {
		if (strcmp(value, "mark") == 0)
			st->cfg->is_spf_reject = false;
		else if (strcmp(value, "reject") == 0)
			st->cfg->is_spf_reject = true;
		else
			fail(st, "key 'fail': '%s' is not mark or reject",
			    value);
		return 0;
	}
	if (strcmp(key, "skip_networks") == 0) {
		if (networks_parse(value, &st->cfg->spf_skip_networks,
		    &st->cfg->nspf_skip_networks) < 0)
			fail(st, "key 'skip_networks': '%s' is not a list of "
			    "networks like 127.0.0.0/8, ::1", value);
		return 0;
	}
	return handle_param(st, "spf", key, value);
}

/* [dkim]: verify, and the numbers of config_params.h. */
static int
handle_dkim(struct load_state *st, const char *key, const char *value)
{
	if (strcmp(key, "verify") == 0) {
		if (config_parse_bool(value, &st->cfg->is_dkim_verify) < 0)
			fail(st, "key 'verify': '%s' is not yes or no", value);
		return 0;
	}
	return handle_param(st, "dkim", key, value);
}

/* [dmarc]: check, reject, quarantine, psl_file, and the numbers of
 * config_params.h. */
static int
handle_dmarc(struct load_state *st, const char *key, const char *value)
{
	bool *flag = strcmp(key, "check") == 0 ? &st->cfg->is_dmarc_check :
	    strcmp(key, "reject") == 0 ? &st->cfg->is_dmarc_reject :
	    strcmp(key, "quarantine") == 0 ? &st->cfg->is_dmarc_quarantine :
	    NULL;

	if (flag != NULL) {
		if (config_parse_bool(value, flag) < 0)
			fail(st, "key '%s': '%s' is not yes or no", key, value);
		return 0;
	}
	if (strcmp(key, "psl_file") == 0) {
		if (value[0] != '/')
			fail(st, "key 'psl_file': '%s' is not an absolute "
			    "path", value);
		set_string(&st->cfg->dmarc_psl_file, value);
		return 0;
	}
	return handle_param(st, "dmarc", key, value);
}

static int
handle_auth(struct load_state *st, const char *key, const char *value)
{
	struct config *cfg = st->cfg;
	bool *flag = strcmp(key, "imap") == 0 ? &cfg->is_imap_default :
	    strcmp(key, "pop3") == 0 ? &cfg->is_pop3_default :
	    strcmp(key, "submission") == 0 ? &cfg->is_submission_default :
	    NULL;

	if (flag != NULL) {
		if (config_parse_bool(value, flag) < 0)
			fail(st, "key '%s': '%s' is not yes or no", key, value);
	} else if (strcmp(key, "oauth_issuer") == 0) {
		set_string(&cfg->oauth_issuer, value);
	} else if (strcmp(key, "oauth_audience") == 0) {
		set_string(&cfg->oauth_audience, value);
	} else if (strcmp(key, "oauth_jwks") == 0) {
		if (value[0] != '/')
			fail(st, "key 'oauth_jwks': '%s' is not an absolute "
			    "path", value);
		set_string(&cfg->oauth_jwks, value);
		st->oauth_jwks_line = st->lineno;
	} else {
		handle_param(st, "auth", key, value);
	}
	return 0;
}

static struct config_listener *
listener_get(struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		if (strcmp(cfg->listeners[i].name, name) == 0)
			return &cfg->listeners[i];
	}
	cfg->listeners = xrealloc(cfg->listeners,
	    (cfg->nlisteners + 1) * sizeof(*cfg->listeners));
	struct config_listener *l = &cfg->listeners[cfg->nlisteners++];

	memset(l, 0, sizeof(*l));
	l->name = xstrdup(name);
	l->proto = (enum config_proto)-1;
	l->tls = CONFIG_TLS_NONE;
	return l;
}

static int
handle_listener(struct load_state *st, const char *name, const char *key,
    const char *value)
{
	struct config_listener *l = listener_get(st->cfg, name);
	size_t idx = (size_t)(l - st->cfg->listeners);
	uint64_t n;
	int e;

	if (idx == st->nhas_port) {
		st->has_port = xrealloc(st->has_port,
		    (st->nhas_port + 1) * sizeof(*st->has_port));
		st->has_port[st->nhas_port++] = false;
	}

	if (strcmp(key, "address") == 0) {
		if (!is_valid_address(value))
			fail(st, "key 'address': '%s' is not a numeric IPv4 or "
			    "IPv6 address", value);
		set_string(&l->address, value);
	} else if (strcmp(key, "port") == 0) {
		if (parse_number(value, &n, "", NULL) < 0 || n > 65535)
			fail(st, "key 'port': '%s' is not a port number (0 to "
			    "65535)", value);
		else {
			l->port = (uint16_t)n;
			st->has_port[idx] = true;
		}
	} else if (strcmp(key, "protocol") == 0) {
		if (parse_enum(value, proto_names, ARRAY_LEN(proto_names),
		    &e) < 0)
			fail(st, "key 'protocol': '%s' is not one of smtp, "
			    "submission, imap, pop3, http", value);
		else
			l->proto = (enum config_proto)e;
	} else if (strcmp(key, "tls") == 0) {
		if (parse_enum(value, tls_names, ARRAY_LEN(tls_names), &e) < 0)
			fail(st, "key 'tls': '%s' is not one of none, starttls, "
			    "implicit", value);
		else
			l->tls = (enum config_tls)e;
	} else if (strcmp(key, "metrics") == 0) {
		if (config_parse_bool(value, &l->is_metrics) < 0)
			fail(st, "key 'metrics': '%s' is not yes or no", value);
	} else if (strcmp(key, "https_redirect") == 0) {
		if (config_parse_bool(value, &l->is_https_redirect) < 0)
			fail(st, "key 'https_redirect': '%s' is not yes or no",
			    value);
	} else if (strcmp(key, "milters") == 0) {
		listener_milters_set(st, l, value);
	} else {
		fail(st, "key '%s': unknown in section [listener %s]", key,
		    name);
	}
	return 0;
}

static int
handle_certificate(struct load_state *st, const char *name, const char *key,
    const char *value)
{
	struct config *cfg = st->cfg;
	struct config_cert *c = NULL;

	for (size_t i = 0; i < cfg->ncerts; i++) {
		if (strcmp(cfg->certs[i].name, name) == 0)
			c = &cfg->certs[i];
	}
	if (c == NULL) {
		cfg->certs = xrealloc(cfg->certs,
		    (cfg->ncerts + 1) * sizeof(*cfg->certs));
		c = &cfg->certs[cfg->ncerts++];
		memset(c, 0, sizeof(*c));
		c->name = xstrdup(name);
	}
	if (strcmp(key, "cert") == 0) {
		set_string(&c->cert_file, value);
	} else if (strcmp(key, "key") == 0) {
		set_string(&c->key_file, value);
	} else {
		fail(st, "key '%s': unknown in section [certificate %s]", key,
		    name);
	}
	return 0;
}

static const char *const milter_action_names[] = {
	[CONFIG_MILTER_ACCEPT] = "accept",
	[CONFIG_MILTER_TEMPFAIL] = "tempfail",
	[CONFIG_MILTER_REJECT] = "reject",
};

const char *
config_milter_action_name(enum config_milter_action a)
{
	return milter_action_names[a];
}

const struct config_milter *
config_milter_find(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nmilters; i++) {
		if (strcmp(cfg->milters[i].name, name) == 0)
			return &cfg->milters[i];
	}
	return NULL;
}

/* "inet:ADDR:PORT" (a numeric IPv4 address, or an IPv6 one in
 * brackets: no name to resolve on the session's thread) or
 * "unix:/absolute/path". */
static bool
is_milter_socket_ok(const char *v)
{
	if (strncmp(v, "unix:", 5) == 0)
		return v[5] == '/' && strlen(v + 5) < 100;
	if (strncmp(v, "inet:", 5) == 0) {
		const char *a = v + 5, *colon;
		char addr[64];
		size_t n;
		uint64_t port;

		if (*a == '[') {
			const char *end = strchr(a, ']');

			if (end == NULL || end[1] != ':')
				return false;
			n = (size_t)(end - a - 1);
			a++;
			colon = end + 1;
		} else {
			colon = strrchr(a, ':');
			if (colon == NULL)
				return false;
			n = (size_t)(colon - a);
		}
		if (n == 0 || n >= sizeof(addr))
			return false;
		memcpy(addr, a, n);
		addr[n] = '\0';
		return is_valid_address(addr) && parse_number(colon + 1,
		    &port, "", NULL) == 0 && port > 0 && port <= 65535;
	}
	return false;
}

static int
handle_milter(struct load_state *st, const char *name, const char *key,
    const char *value)
{
	struct config *cfg = st->cfg;
	struct config_milter *m = NULL;
	int e;

	for (size_t i = 0; i < cfg->nmilters; i++) {
		if (strcmp(cfg->milters[i].name, name) == 0)
			m = &cfg->milters[i];
	}
	if (m == NULL) {
		cfg->milters = xrealloc(cfg->milters,
		    (cfg->nmilters + 1) * sizeof(*cfg->milters));
		m = &cfg->milters[cfg->nmilters++];
		memset(m, 0, sizeof(*m));
		m->name = xstrdup(name);
		m->timeout = 30;
		m->default_action = CONFIG_MILTER_TEMPFAIL;
	}
	if (strcmp(key, "socket") == 0) {
		if (!is_milter_socket_ok(value))
			fail(st, "key 'socket': '%s' is not inet:ADDRESS:PORT "
			    "(numeric address, IPv6 in brackets) or "
			    "unix:/absolute/path", value);
		else
			set_string(&m->socket, value);
	} else if (strcmp(key, "timeout") == 0) {
		if (config_parse_seconds(value, &m->timeout) < 0 ||
		    m->timeout < 1 || m->timeout > 3600)
			fail(st, "key 'timeout': '%s' is not a time from 1s to "
			    "1h", value);
	} else if (strcmp(key, "default_action") == 0) {
		if (parse_enum(value, milter_action_names,
		    ARRAY_LEN(milter_action_names), &e) < 0)
			fail(st, "key 'default_action': '%s' is not one of "
			    "accept, tempfail, reject", value);
		else
			m->default_action = (enum config_milter_action)e;
	} else {
		fail(st, "key '%s': unknown in section [milter %s]", key,
		    name);
	}
	return 0;
}

/* "a, b,c": the names of [milter NAME] sections, checked once the
 * whole file is read (validate()). */
static void
listener_milters_set(struct load_state *st, struct config_listener *l,
    const char *value)
{
	char *copy = xstrdup(value), *save = NULL;

	for (size_t i = 0; i < l->nmilters; i++)
		free(l->milters[i]);
	free(l->milters);
	l->milters = NULL;
	l->nmilters = 0;
	for (char *t = strtok_r(copy, ", \t", &save); t != NULL;
	    t = strtok_r(NULL, ", \t", &save)) {
		if (!is_valid_name(t)) {
			fail(st, "key 'milters': '%s' is not a section name", t);
			break;
		}
		if (l->nmilters >= 16) {
			fail(st, "key 'milters': more than 16 milters");
			break;
		}
		l->milters = xrealloc(l->milters,
		    (l->nmilters + 1) * sizeof(*l->milters));
		l->milters[l->nmilters++] = xstrdup(t);
	}
	free(copy);
}

static int
handle_param(struct load_state *st, const char *section, const char *key,
    const char *value)
{
	for (size_t i = 0; i < ARRAY_LEN(params); i++) {
		const struct param *p = &params[i];
		uint64_t v;
		int rc;

		if (strcmp(p->section, section) != 0 ||
		    strcmp(p->key, key) != 0)
			continue;
		if (p->kind == SIZE)
			rc = config_parse_size(value, &v);
		else if (p->kind == SECONDS)
			rc = config_parse_seconds(value, &v);
		else
			rc = parse_number(value, &v, "", NULL);
		if (rc < 0) {
			fail(st, "key '%s': '%s' is not %s", key, value,
			    p->kind == SIZE ? "a size (like 4096, 64k, 50M)" :
			    p->kind == SECONDS ? "a duration (like 30s, 5m, 1h)"
			    : "a whole number");
		} else if (v < p->min || v > p->max) {
			fail(st, "key '%s': %llu is out of range (%llu to %llu)",
			    key, (unsigned long long)v,
			    (unsigned long long)p->min,
			    (unsigned long long)p->max);
		} else {
			*(uint64_t *)((char *)st->cfg + p->offset) = v;
		}
		return 0;
	}
	fail(st, "key '%s': unknown in section [%s]", key, section);
	return 0;
}

/* inih callback: returns 0 on the first error so that ini_parse_file()
 * reports that line. */
static int
on_ini_pair(void *user, const char *section, const char *key,
    const char *value)
{
	struct load_state *st = user;
	const char *space = strchr(section, ' ');
	bool had_err = st->has_err;

	if (had_err)
		return 1;
	/* A longer name was cut by inih: two sections could merge, and the
	 * cut name is not on any line of the file. */
	if (strlen(section) >= INI_SECTION_MAX - 1) {
		fail(st, "section [%s...]: name longer than %d characters",
		    section, INI_SECTION_MAX - 2);
		return 0;
	}
	if (strcmp(section, "server") == 0) {
		handle_server(st, key, value);
	} else if (strcmp(section, "auth") == 0) {
		handle_auth(st, key, value);
	} else if (strcmp(section, "queue") == 0) {
		handle_queue(st, key, value);
	} else if (strcmp(section, "mta-sts") == 0) {
		handle_mtasts(st, key, value);
	} else if (strcmp(section, "acme") == 0) {
		handle_acme(st, key, value);
	} else if (strcmp(section, "spf") == 0) {
		handle_spf(st, key, value);
	} else if (strcmp(section, "dkim") == 0) {
		handle_dkim(st, key, value);
	} else if (strcmp(section, "dmarc") == 0) {
		handle_dmarc(st, key, value);
	} else if (strcmp(section, "limits") == 0 ||
	    strcmp(section, "timeouts") == 0) {
		handle_param(st, section, key, value);
	} else if (space != NULL && is_valid_name(space + 1) &&
	    strncmp(section, "listener", (size_t)(space - section)) == 0 &&
	    space - section == 8) {
		handle_listener(st, space + 1, key, value);
	} else if (space != NULL && is_valid_name(space + 1) &&
	    space - section == 11 &&
	    strncmp(section, "certificate", 11) == 0) {
		handle_certificate(st, space + 1, key, value);
	} else if (space != NULL && is_valid_name(space + 1) &&
	    space - section == 6 && strncmp(section, "milter", 6) == 0) {
		handle_milter(st, space + 1, key, value);
	} else if (section[0] == '\0') {
		fail(st, "key '%s': outside any section (start with [server])",
		    key);
	} else {
		fail(st, "section [%s]: unknown (expected server, auth, limits, "
		    "timeouts, queue, mta-sts, acme, spf, dkim, dmarc, "
		    "listener NAME, certificate NAME or milter NAME)", section);
	}
	return st->has_err ? 0 : 1;
}

/* inih reader: reads one line like fgets() and counts lines, so that an
 * error found by on_ini_pair() is reported with its own line even when
 * inih saw a syntax error on another line. It refuses what inih would
 * silently misread: a line longer than inih's buffer (split in two) and a
 * NUL byte (the rest of the line ignored). */
static char *
read_ini_line(char *str, int num, void *user)
{
	struct load_state *st = user;
	size_t len = 0;
	int c = EOF;

	if (st->has_err)
		return NULL;
	while (len + 1 < (size_t)num && (c = getc(st->f)) != EOF) {
		str[len++] = (char)c;
		if (c == '\n')
			break;
	}
	if (len == 0)
		return NULL;
	str[len] = '\0';
	st->lineno++;
	if (memchr(str, '\0', len) != NULL) {
		fail(st, "line contains a NUL byte");
		return NULL;
	}
	/* The buffer filled up: fine only if the line ends right there. */
	if (c != '\n' && c != EOF && (c = getc(st->f)) == '\r')
		c = getc(st->f);
	if (c != '\n' && c != EOF) {
		fail(st, "line longer than %d characters", num - 1);
		return NULL;
	}
	return str;
}

/* Finds the line of "[section]" in path, for errors found after parsing. */
static int
find_section_line(const char *path, const char *section)
{
	FILE *f = fopen(path, "r");
	char line[1024], want[160];
	int n = 0, found = 0;

	if (f == NULL)
		return 0;
	snprintf(want, sizeof(want), "[%s]", section);
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = line;

		n++;
		/* inih skips a UTF-8 byte order mark. */
		if (n == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
			p += 3;
		while (isspace((unsigned char)*p))
			p++;
		if (strncmp(p, want, strlen(want)) == 0) {
			found = n;
			break;
		}
	}
	fclose(f);
	return found;
}

int
config_section_line(const struct config *cfg, const char *section)
{
	return find_section_line(cfg->path, section);
}

void
config_default_listeners(struct config *cfg, bool is_root)
{
	static const struct {
		const char *name;
		uint16_t port;
		enum config_proto proto;
		enum config_tls tls;
	} defaults[] = {
		{ "smtp", 25, CONFIG_PROTO_SMTP, CONFIG_TLS_STARTTLS },
		{ "submission", 587, CONFIG_PROTO_SUBMISSION,
		    CONFIG_TLS_STARTTLS },
		{ "submissions", 465, CONFIG_PROTO_SUBMISSION,
		    CONFIG_TLS_IMPLICIT },
		{ "imap", 143, CONFIG_PROTO_IMAP, CONFIG_TLS_STARTTLS },
		{ "imaps", 993, CONFIG_PROTO_IMAP, CONFIG_TLS_IMPLICIT },
		{ "pop3", 110, CONFIG_PROTO_POP3, CONFIG_TLS_STARTTLS },
		{ "pop3s", 995, CONFIG_PROTO_POP3, CONFIG_TLS_IMPLICIT },
	};

	for (size_t i = 0; i < ARRAY_LEN(defaults); i++) {
		struct config_listener *l = listener_get(cfg,
		    defaults[i].name);

		set_string(&l->address, "0.0.0.0");
		l->port = (uint16_t)(defaults[i].port + (is_root ? 0 : 10000));
		l->proto = defaults[i].proto;
		l->tls = defaults[i].tls;
	}
}

/* Checks what single keys cannot: required keys, listeners complete and
 * distinct, certificates present when TLS is used. */
static int
validate(struct config *cfg, const struct load_state *st, char *err,
    size_t errlen)
{
	const char *path = cfg->path;
	bool needs_tls = false;

	if (cfg->data_dir == NULL) {
		snprintf(err, errlen, "%s:%d: key 'data_dir': missing from "
		    "[server]", path, find_section_line(path, "server"));
		return -1;
	}
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		struct config_listener *l = &cfg->listeners[i];
		char section[80];
		const char *missing = NULL;

		snprintf(section, sizeof(section), "listener %s", l->name);
		/* The default listeners were not read: they have ports. */
		if (i < st->nhas_port && !st->has_port[i])
			missing = "port";
		else if ((int)l->proto == -1)
			missing = "protocol";
		if (missing != NULL) {
			snprintf(err, errlen, "%s:%d: key '%s': missing from "
			    "[%s]", path, find_section_line(path, section),
			    missing, section);
			return -1;
		}
		if (l->address == NULL)
			l->address = xstrdup("0.0.0.0");
		if ((l->is_metrics || l->is_https_redirect) &&
		    l->proto != CONFIG_PROTO_HTTP) {
			snprintf(err, errlen, "%s:%d: key '%s': only a listener "
			    "with protocol = http has it", path,
			    find_section_line(path, section), l->is_metrics ?
			    "metrics" : "https_redirect");
			return -1;
		}
		if (l->is_https_redirect && (l->is_metrics ||
		    l->tls != CONFIG_TLS_NONE)) {
			snprintf(err, errlen, "%s:%d: key 'https_redirect': "
			    "only for a plain (tls = none) listener without "
			    "metrics", path, find_section_line(path, section));
			return -1;
		}
		if (l->proto == CONFIG_PROTO_HTTP &&
		    l->tls == CONFIG_TLS_STARTTLS) {
			snprintf(err, errlen, "%s:%d: key 'tls': HTTP has no "
			    "STARTTLS; use implicit (HTTPS) or none", path,
			    find_section_line(path, section));
			return -1;
		}
		if (l->nmilters > 0 && l->proto != CONFIG_PROTO_SMTP &&
		    l->proto != CONFIG_PROTO_SUBMISSION) {
			snprintf(err, errlen, "%s:%d: key 'milters': only smtp "
			    "and submission listeners have milters", path,
			    find_section_line(path, section));
			return -1;
		}
		for (size_t j = 0; j < l->nmilters; j++) {
			if (config_milter_find(cfg, l->milters[j]) == NULL) {
				snprintf(err, errlen, "%s:%d: key 'milters': no "
				    "[milter %s] section", path,
				    find_section_line(path, section),
				    l->milters[j]);
				return -1;
			}
		}
		if (l->tls != CONFIG_TLS_NONE)
			needs_tls = true;
		for (size_t j = 0; j < i; j++) {
			struct config_listener *o = &cfg->listeners[j];

			if (l->port != 0 && o->port == l->port &&
			    strcmp(o->address, l->address) == 0) {
				snprintf(err, errlen, "%s:%d: key 'port': %u "
				    "on %s is already used by [listener %s]",
				    path, find_section_line(path, section),
				    l->port, l->address, o->name);
				return -1;
			}
		}
	}
	for (size_t i = 0; i < cfg->nmilters; i++) {
		char section[80];

		snprintf(section, sizeof(section), "milter %s",
		    cfg->milters[i].name);
		if (cfg->milters[i].socket == NULL) {
			snprintf(err, errlen, "%s:%d: key 'socket': missing from "
			    "[%s]", path, find_section_line(path, section),
			    section);
			return -1;
		}
	}
	for (size_t i = 0; i < cfg->ncerts; i++) {
		struct config_cert *c = &cfg->certs[i];
		char section[80];

		snprintf(section, sizeof(section), "certificate %s", c->name);
		if (c->cert_file == NULL || c->key_file == NULL) {
			snprintf(err, errlen, "%s:%d: key '%s': missing from "
			    "[%s]", path, find_section_line(path, section),
			    c->cert_file == NULL ? "cert" : "key", section);
			return -1;
		}
	}
	/* A token names its issuer and audience; without both checked,
	 * tokens minted for any other application of the same provider
	 * would log in here (RFC 8725 §3.8, §3.9). */
	if (cfg->oauth_jwks != NULL && (cfg->oauth_issuer == NULL ||
	    cfg->oauth_audience == NULL)) {
		snprintf(err, errlen, "%s:%d: key 'oauth_jwks': needs %s in "
		    "[auth] too, or tokens issued for other applications "
		    "would be accepted", path, st->oauth_jwks_line,
		    cfg->oauth_issuer == NULL && cfg->oauth_audience == NULL ?
		    "oauth_issuer and oauth_audience" :
		    cfg->oauth_issuer == NULL ? "oauth_issuer" :
		    "oauth_audience");
		return -1;
	}
	if (cfg->acme_directory == NULL)
		cfg->acme_directory = xstrdup(ACME_DIRECTORY_DEFAULT);
	if (cfg->acme_challenge == NULL)
		cfg->acme_challenge = xstrdup("http-01");
	if (cfg->acme_caa == NULL && (strncmp(cfg->acme_directory,
	    "https://acme-v02.api.letsencrypt.org/", 37) == 0 ||
	    strncmp(cfg->acme_directory,
	    "https://acme-staging-v02.api.letsencrypt.org/", 45) == 0))
		cfg->acme_caa = xstrdup("letsencrypt.org");
	if (cfg->is_acme) {
		/* The CA connects to port 80 (HTTP-01, RFC 8555 §8.3) or 443
		 * (TLS-ALPN-01, RFC 8737 §3) of each name: we need a listener
		 * of that kind. */
		bool is_alpn = strcmp(cfg->acme_challenge, "tls-alpn-01") == 0;
		bool has = false;

		for (size_t i = 0; i < cfg->nlisteners; i++) {
			const struct config_listener *l = &cfg->listeners[i];

			if (l->proto == CONFIG_PROTO_HTTP && !l->is_metrics &&
			    (l->tls == CONFIG_TLS_IMPLICIT) == is_alpn)
				has = true;
		}
		if (!has) {
			snprintf(err, errlen, "%s:%d: key '%s': %s needs a "
			    "[listener NAME] with protocol = http and %s "
			    "(without metrics)", path,
			    is_alpn ? st->acme_challenge_line : st->acme_line,
			    is_alpn ? "challenge" : "enabled",
			    is_alpn ? "ACME tls-alpn-01" : "ACME http-01",
			    is_alpn ? "tls = implicit" : "tls = none");
			return -1;
		}
	}
	if (needs_tls && cfg->ncerts == 0) {
		snprintf(err, errlen, "%s:%d: key 'tls': listeners use TLS but "
		    "no [certificate NAME] section is configured", path,
		    find_section_line(path, "server"));
		return -1;
	}
	return 0;
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	struct load_state st = { .cfg = cfg };
	FILE *f;
	int line;

	cfg->path = xstrdup(path);
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->is_imap_default = true;
	cfg->is_pop3_default = true;
	cfg->is_submission_default = true;
	/* Mail from loopback is local (a web application, a filter
	 * handing mail back): no domain's SPF names 127.0.0.1. */
	cfg->is_spf_check = true;
	cfg->is_dkim_verify = true;
	if (networks_parse("127.0.0.0/8 ::1", &cfg->spf_skip_networks,
	    &cfg->nspf_skip_networks) < 0)
		panic("config: default spf skip_networks");
	cfg->is_dmarc_check = true;
	cfg->is_dmarc_reject = true;
	cfg->is_dmarc_quarantine = true;
	cfg->dmarc_psl_file =
	    xstrdup("/usr/share/publicsuffix/public_suffix_list.dat");
	for (size_t i = 0; i < ARRAY_LEN(params); i++)
		*(uint64_t *)((char *)cfg + params[i].offset) = params[i].def;

	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		    strerror(errno));
		config_free(&cfg);
		return NULL;
	}
	st.f = f;
	line = ini_parse_stream(read_ini_line, &st, on_ini_pair, &st);
	fclose(f);
	/* inih returns the first line it found wrong, which is either a
	 * syntax error or the line where on_ini_pair() failed. */
	if (line != 0 && (!st.has_err || line < st.err_line)) {
		snprintf(err, errlen, "%s:%d: syntax error (expected 'key = "
		    "value' or '[section]')", path, line);
		goto fail;
	}
	if (st.has_err) {
		snprintf(err, errlen, "%s:%d: %s", path, st.err_line, st.err);
		goto fail;
	}
	if (cfg->hostname == NULL) {
		char host[256];

		if (gethostname(host, sizeof(host)) != 0)
			strcpy(host, "localhost");
		host[sizeof(host) - 1] = '\0';
		cfg->hostname = xstrdup(host);
	}
	/* A file that names no listener gets the standard ports. */
	if (cfg->nlisteners == 0)
		config_default_listeners(cfg, geteuid() == 0);
	if (validate(cfg, &st, err, errlen) < 0)
		goto fail;
	free(st.has_port);
	return cfg;

fail:
	free(st.has_port);
	config_free(&cfg);
	return NULL;
}

void
config_free(struct config **cfgp)
{
	struct config *cfg = *cfgp;

	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		free(cfg->listeners[i].name);
		free(cfg->listeners[i].address);
		for (size_t j = 0; j < cfg->listeners[i].nmilters; j++)
			free(cfg->listeners[i].milters[j]);
		free(cfg->listeners[i].milters);
	}
	free(cfg->listeners);
	for (size_t i = 0; i < cfg->nmilters; i++) {
		free(cfg->milters[i].name);
		free(cfg->milters[i].socket);
	}
	free(cfg->milters);
	for (size_t i = 0; i < cfg->ncerts; i++) {
		free(cfg->certs[i].name);
		free(cfg->certs[i].cert_file);
		free(cfg->certs[i].key_file);
	}
	free(cfg->certs);
	free(cfg->path);
	free(cfg->hostname);
	free(cfg->data_dir);
	free(cfg->user);
	free(cfg->trusted_networks);
	free(cfg->spf_skip_networks);
	free(cfg->postmaster);
	free(cfg->oauth_issuer);
	free(cfg->oauth_audience);
	free(cfg->oauth_jwks);
	free(cfg->acme_directory);
	free(cfg->acme_contact);
	free(cfg->acme_ca_file);
	free(cfg->acme_caa);
	free(cfg->acme_challenge);
	free(cfg->queue_resolver);
	free(cfg->dmarc_psl_file);
	free(cfg->queue_tls);
	free(cfg->queue_tls_domains);
	free(cfg);
	*cfgp = NULL;
}
