/*
 * config: reads and validates postern.conf (INI, parsed with inih). A bad
 * file is refused whole with one line naming the file, the line, the key
 * and what is wrong; nothing half-read is ever used. The main thread loads
 * the configuration; a loaded struct config is then read-only and may be
 * shared by every thread until it is freed after a reload.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/config_params.h"
#include "lib/log.h"

enum config_proto {
	CONFIG_PROTO_SMTP,
	CONFIG_PROTO_SUBMISSION,
	CONFIG_PROTO_IMAP,
	CONFIG_PROTO_POP3,
	CONFIG_PROTO_HTTP,
};

enum config_tls {
	CONFIG_TLS_NONE,
	CONFIG_TLS_STARTTLS,
	CONFIG_TLS_IMPLICIT,
};

/* [mta-sts] mode: what senders do when TLS to our MX fails (RFC 8461
 * §5): testing (deliver anyway and report; the default), enforce (do not
 * deliver), none (forget the policy). */
enum config_mtasts_mode {
	CONFIG_MTASTS_TESTING,
	CONFIG_MTASTS_ENFORCE,
	CONFIG_MTASTS_NONE,
};

struct config_listener {
	char *name;
	char *address;		/* numeric IPv4 or IPv6 address */
	uint16_t port;		/* 0: any free port (tests) */
	enum config_proto proto;
	enum config_tls tls;
	/* http only: serve /metrics and /healthz here (a loopback or
	 * internal listener), and answer everything else with a redirect
	 * to https (port 80 beside 443). */
	bool is_metrics;
	bool is_https_redirect;
	/* smtp and submission: the [milter NAME] sections that see this
	 * listener's mail, in order (milters = a,b); none when nmilters is
	 * 0. */
	char **milters;
	size_t nmilters;
};

/* What a session does when a milter cannot be reached, times out or
 * breaks the protocol ([milter NAME] default_action). */
enum config_milter_action {
	CONFIG_MILTER_ACCEPT,	/* go on without it */
	CONFIG_MILTER_TEMPFAIL,	/* 451 4.7.1 (the default, as Postfix) */
	CONFIG_MILTER_REJECT,	/* 550 5.7.1 */
};

/* [milter NAME]: a Sendmail milter (rspamd, ClamAV) postern talks to. */
struct config_milter {
	char *name;
	char *socket;		/* "inet:127.0.0.1:11332", "unix:/path" */
	uint64_t timeout;	/* seconds, each connect, command, reply */
	enum config_milter_action default_action;
};

struct config_cert {
	char *name;
	char *cert_file;	/* PEM chain */
	char *key_file;		/* PEM private key */
};

/* An IPv4 or IPv6 network, "10.0.0.0/8" or "2001:db8::/32". */
struct config_network {
	int family;		/* AF_INET or AF_INET6 */
	unsigned char addr[16];	/* 4 bytes for AF_INET */
	unsigned prefix;	/* bits that must match */
};

struct config {
	char *path;		/* the file this came from */
	char *hostname;
	char *data_dir;
	char *user;		/* run-as user; NULL: stay who we are */
	unsigned workers;	/* 0: one per core */
	enum log_level log_level;
	bool log_syslog;
	/* Plaintext authentication before TLS, for loopback testing only. */
	bool allow_plaintext_auth;
	/* Clients that may use our own domains as envelope sender without
	 * logging in (other hosts of the site, a web application). */
	struct config_network *trusted_networks;
	size_t ntrusted_networks;
	/* Where mail to postmaster@ a domain goes when the domain has no
	 * postmaster of its own (RFC 5321 §4.5.1); NULL: not set. */
	char *postmaster;

	/* [auth]: whether each protocol is on for accounts that do not say
	 * (some providers ship POP3 off), and OAuth bearer tokens. */
	bool is_imap_default;
	bool is_pop3_default;
	bool is_submission_default;
	char *oauth_issuer;
	char *oauth_audience;
	char *oauth_jwks;	/* JWKS file; NULL: OAuth off */

	/* [queue]: the DNS server the queue runner asks (numeric address;
	 * NULL: the system's, from /etc/resolv.conf). */
	char *queue_resolver;
	/* [queue] TLS policy for outbound SMTP: "none", "may" (the
	 * default), "encrypt" or "verify"; and per-destination exceptions,
	 * "domain:policy" words separated by spaces (NULL: none). */
	char *queue_tls;
	char *queue_tls_domains;

	/* [mta-sts] mode of the policy served at
	 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt; its max_age is
	 * mta_sts_max_age of config_params.h. */
	enum config_mtasts_mode mtasts_mode;

	/* [acme] (RFC 8555): postern gets its certificate itself when
	 * is_acme. The directory URL (https), the account's contact address
	 * (NULL: none), a PEM file of roots to trust for the directory's
	 * HTTPS (NULL: the system's), and the challenge to answer:
	 * "http-01" or "tls-alpn-01". Read at start only. */
	bool is_acme;
	char *acme_directory;
	char *acme_contact;
	char *acme_ca_file;
	/* The CA's issuer domain for CAA (RFC 8659 §4.2): [acme] caa,
	 * else letsencrypt.org for Let's Encrypt's directories, else
	 * NULL (unknown). */
	char *acme_caa;
	char *acme_challenge;

	/* [spf] (RFC 7208) on port 25: check at all; refuse a fail (550
	 * 5.7.23) instead of marking it; clients never checked (mail from
	 * loopback is local: 127.0.0.0/8 and ::1 unless set). */
	bool is_spf_check;
	bool is_spf_reject;
	struct config_network *spf_skip_networks;
	size_t nspf_skip_networks;
	/* [dkim] verify (RFC 6376) of mail on port 25 without a login. */
	bool is_dkim_verify;
	/* [dmarc] (RFC 7489) for the same mail as SPF: check at all;
	 * refuse a fail whose policy is reject (550 5.7.1); deliver a fail
	 * whose policy is quarantine to the Junk mailbox; the Public
	 * Suffix List (read at start). */
	bool is_dmarc_check;
	bool is_dmarc_reject;
	bool is_dmarc_quarantine;
	char *dmarc_psl_file;

	struct config_listener *listeners;
	size_t nlisteners;
	struct config_cert *certs;	/* certs[0] is served without SNI */
	size_t ncerts;
	struct config_milter *milters;
	size_t nmilters;

#define CONFIG_FIELD(section, key, field, def, min, max, kind) \
	uint64_t field;
	CONFIG_PARAMS(CONFIG_FIELD)
#undef CONFIG_FIELD
};

/* Loads path. Returns a new configuration, or NULL with a one-line
 * message in err ("FILE:LINE: key 'port': ...") . */
struct config *config_load(const char *path, char *err, size_t errlen);

void config_free(struct config **cfg);

const char *config_proto_name(enum config_proto proto);
/* Whether two listeners are the same socket: name, address, port,
 * protocol and TLS kind (a reload cannot change one without a restart). */
bool is_config_listener_same(const struct config_listener *a,
    const struct config_listener *b);
const char *config_tls_name(enum config_tls tls);
const char *config_mtasts_mode_name(enum config_mtasts_mode mode);

/* The listeners used when a file names none: the standard ports when
 * is_root, else the same ports plus 10000 (printed at start). */
void config_default_listeners(struct config *cfg, bool is_root);

/* The line of "[section]" in the file cfg came from (0 if not found), for
 * errors found after loading, e.g. "certificate main". */
int config_section_line(const struct config *cfg, const char *section);

/* Is the numeric address (as printed by inet_ntop) inside one of the
 * trusted networks? An IPv4-mapped IPv6 address counts as IPv4. */
bool is_config_network_trusted(const struct config *cfg,
    const char *address);

/* Is the numeric address one SPF is not checked for ([spf]
 * skip_networks)? An IPv4-mapped IPv6 address counts as IPv4. */
bool is_config_spf_skipped(const struct config *cfg, const char *address);

/* The [milter NAME] section called name, or NULL. */
const struct config_milter *config_milter_find(const struct config *cfg,
    const char *name);
const char *config_milter_action_name(enum config_milter_action a);

/* Parses "10k", "5M", "1G" or a plain number of bytes. */
int config_parse_size(const char *s, uint64_t *out);
/* Parses "30", "30s", "5m", "2h", "1d" into seconds. */
int config_parse_seconds(const char *s, uint64_t *out);
int config_parse_bool(const char *s, bool *out);

#endif
