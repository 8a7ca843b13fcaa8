/*
 * Unit tests for lib/config: files that load and what they set, files that
 * are refused and the one line that says where and why, the default
 * listeners, and the size, duration and yes/no parsers.
 *
 * Configuration files are written under $POSTERN_TEST_TMP (created when
 * missing; /tmp when unset) with unique names and removed after loading.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <ini.h>

#include "lib/config.h"
#include "lib/util.h"

/* The first lines of most files below: [server] is line 1, data_dir 2. */
#define SERVER_LINES							\
	"[server]\n"							\
	"data_dir = /var/lib/postern\n"

/* Three lines: a certificate, so that TLS listeners are accepted. */
#define CERT_LINES							\
	"[certificate main]\n"						\
	"cert = /etc/postern/main.crt\n"				\
	"key = /etc/postern/main.key\n"

/* Short enough for a file name to follow within PATH_MAX. */
static char tmp_dir[PATH_MAX - 64];

struct param_row {
	const char *section;
	const char *key;
	size_t offset;
	uint64_t def, min, max;
};

static const struct param_row param_rows[] = {
#define PARAM_ROW(section, key, field, def, min, max, kind) \
	{ #section, #key, offsetof(struct config, field), def, min, max },
	CONFIG_PARAMS(PARAM_ROW)
#undef PARAM_ROW
};

/* The section as the file writes it: the table's token with '-' for '_'
 * (mta_sts is [mta-sts]). Returns a static buffer. */
static const char *
file_section(const struct param_row *row)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "%s", row->section);
	for (char *p = buf; *p != '\0'; p++) {
		if (*p == '_')
			*p = '-';
	}
	return buf;
}

static uint64_t
param_value(const struct config *cfg, const struct param_row *row)
{
	return *(const uint64_t *)((const char *)cfg + row->offset);
}

/* Creates dir and any missing parent. Returns 0 or -1. */
static int
make_dirs(const char *dir)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path))
		return -1;
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int
setup_tmp_dir(void **state)
{
	const char *dir = getenv("POSTERN_TEST_TMP");

	(void)state;
	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	if (strlen(dir) >= sizeof(tmp_dir) || make_dirs(dir) < 0) {
		fprintf(stderr, "test_config: cannot use %s: %s\n", dir,
		    strerror(errno));
		return -1;
	}
	strcpy(tmp_dir, dir);
	return 0;
}

/* Writes len bytes of text to a new file with a unique name; path_out
 * receives its name (PATH_MAX bytes). */
static void
conf_write_n(const char *text, size_t len, char *path_out)
{
	int fd;

	snprintf(path_out, PATH_MAX, "%s/test_config.XXXXXX", tmp_dir);
	fd = mkstemp(path_out);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), len);
	assert_int_equal(close(fd), 0);
}

/* Loads len bytes of text; err_out (512 bytes) gets the message, path_out
 * (PATH_MAX bytes) the name the file had. */
static struct config *
conf_load_n(const char *text, size_t len, char *path_out, char *err_out)
{
	struct config *cfg;

	err_out[0] = '\0';
	conf_write_n(text, len, path_out);
	cfg = config_load(path_out, err_out, 512);
	unlink(path_out);
	return cfg;
}

#define load_ok(text) load_ok_at(__LINE__, (text))

/* Loads text, which must be accepted. */
static struct config *
load_ok_at(int at, const char *text)
{
	char path[PATH_MAX], err[512];
	struct config *cfg;

	cfg = conf_load_n(text, strlen(text), path, err);
	if (cfg == NULL) {
		print_error("refused: %s\n", err);
		_fail(__FILE__, at);
	}
	assert_string_equal(cfg->path, path);
	return cfg;
}

#define assert_refused_n(text, len, line, what, detail) \
	assert_refused_at(__LINE__, (text), (len), (line), (what), (detail))
#define assert_refused(text, line, what, detail) \
	assert_refused_n((text), strlen(text), (line), (what), (detail))

/* Loads len bytes of text, which must be refused with one line that
 * starts "FILE:LINE: " then what, and that contains detail if not NULL. */
static void
assert_refused_at(int at, const char *text, size_t len, int line,
    const char *what, const char *detail)
{
	char path[PATH_MAX], err[512], want[PATH_MAX + 256];
	struct config *cfg;

	cfg = conf_load_n(text, len, path, err);
	if (cfg != NULL) {
		config_free(&cfg);
		print_error("accepted; expected line %d: %s\n", line, what);
		_fail(__FILE__, at);
	}
	snprintf(want, sizeof(want), "%s:%d: %s", path, line, what);
	if (strncmp(err, want, strlen(want)) != 0) {
		print_error("got  \"%s\"\nwant \"%s...\"\n", err, want);
		_fail(__FILE__, at);
	}
	if (detail != NULL && strstr(err, detail) == NULL) {
		print_error("\"%s\" does not say \"%s\"\n", err, detail);
		_fail(__FILE__, at);
	}
	if (strchr(err, '\n') != NULL) {
		print_error("not one line: \"%s\"\n", err);
		_fail(__FILE__, at);
	}
}

#define assert_refused_key(text, line, key, detail) \
	assert_refused_at(__LINE__, (text), strlen(text), (line), \
	    "key '" key "': ", (detail))

static void
assert_default_listeners(const struct config *cfg, bool is_root)
{
	static const struct {
		const char *name;
		uint16_t port;
		enum config_proto proto;
		enum config_tls tls;
	} want[] = {
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

	assert_int_equal(cfg->nlisteners, ARRAY_LEN(want));
	for (size_t i = 0; i < ARRAY_LEN(want); i++) {
		const struct config_listener *l = &cfg->listeners[i];

		assert_string_equal(l->name, want[i].name);
		assert_string_equal(l->address, "0.0.0.0");
		assert_int_equal(l->port, want[i].port + (is_root ? 0 : 10000));
		assert_int_equal(l->proto, want[i].proto);
		assert_int_equal(l->tls, want[i].tls);
	}
}

/* Good files. */

static void
test_config_minimal_file_gets_every_default(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(SERVER_LINES CERT_LINES);
	assert_string_equal(cfg->data_dir, "/var/lib/postern");
	assert_non_null(cfg->hostname);
	assert_true(cfg->hostname[0] != '\0');
	assert_null(cfg->user);
	assert_int_equal(cfg->workers, 0);
	assert_int_equal(cfg->log_level, LOG_LEVEL_INFO);
	assert_false(cfg->log_syslog);
	assert_false(cfg->allow_plaintext_auth);
	for (size_t i = 0; i < ARRAY_LEN(param_rows); i++)
		assert_int_equal(param_value(cfg, &param_rows[i]),
		    param_rows[i].def);
	assert_int_equal(cfg->ncerts, 1);
	assert_string_equal(cfg->certs[0].name, "main");
	assert_string_equal(cfg->certs[0].cert_file, "/etc/postern/main.crt");
	assert_string_equal(cfg->certs[0].key_file, "/etc/postern/main.key");
	assert_default_listeners(cfg, geteuid() == 0);
	config_free(&cfg);
	assert_null(cfg);
}

static void
test_config_defaults_match_the_documented_values(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(SERVER_LINES CERT_LINES);
	assert_int_equal(cfg->max_connections, 1000);
	assert_int_equal(cfg->max_connections_per_ip, 20);
	assert_int_equal(cfg->line_length, 4096);
	assert_int_equal(cfg->message_size, 52428800);
	assert_int_equal(cfg->recipients, 100);
	assert_int_equal(cfg->imap_literal_max, 52428800);
	assert_int_equal(cfg->imap_literal_max_preauth, 8192);
	assert_int_equal(cfg->smtp_timeout, 300);
	assert_int_equal(cfg->imap_timeout, 1800);
	assert_int_equal(cfg->pop3_timeout, 600);
	assert_int_equal(cfg->tls_handshake_timeout, 30);
	assert_int_equal(cfg->shutdown_grace, 10);
	assert_int_equal(cfg->ipv6_prefix, 64);
	assert_int_equal(cfg->prelogin_timeout, 60);
	assert_int_equal(cfg->login_deadline, 300);
	assert_int_equal(cfg->write_stall_timeout, 300);
	config_free(&cfg);
}

static void
test_config_plain_listener_needs_no_certificate(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(SERVER_LINES
	    "[listener test]\n"
	    "address = 127.0.0.1\n"
	    "port = 0\n"
	    "protocol = smtp\n");
	assert_int_equal(cfg->ncerts, 0);
	assert_int_equal(cfg->nlisteners, 1);
	assert_string_equal(cfg->listeners[0].name, "test");
	assert_string_equal(cfg->listeners[0].address, "127.0.0.1");
	assert_int_equal(cfg->listeners[0].port, 0);
	assert_int_equal(cfg->listeners[0].proto, CONFIG_PROTO_SMTP);
	assert_int_equal(cfg->listeners[0].tls, CONFIG_TLS_NONE);
	config_free(&cfg);
}

static void
test_config_full_file_sets_every_key(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(
	    "; postern.conf\n"
	    "# every key set\n"
	    "\n"
	    "[server]\n"
	    "hostname = mail.example.org\n"
	    "data_dir = /srv/postern\n"
	    "user = postern\n"
	    "workers = 4\n"
	    "log_level = debug\n"
	    "syslog = yes\n"
	    "allow_plaintext_auth = true\n"
	    "\n"
	    "[limits]\n"
	    "max_connections = 500\n"
	    "max_connections_per_ip = 5\n"
	    "line_length = 8k\n"
	    "message_size = 25M\n"
	    "recipients = 50\n"
	    "imap_literal_max = 1G\n"
	    "imap_literal_max_preauth = 16k\n"
	    "\n"
	    "[timeouts]\n"
	    "smtp = 5m\n"
	    "imap = 1h\n"
	    "pop3 = 90s\n"
	    "tls_handshake = 15\n"
	    "shutdown_grace = 0\n"
	    "\n"
	    "[listener mx]\n"
	    "address = 192.0.2.1\n"
	    "port = 2525 ; inline comment\n"
	    "protocol = smtp\n"
	    "tls = starttls\n"
	    "\n"
	    "[certificate main]\n"
	    "cert = /etc/postern/main.crt\n"
	    "key = /etc/postern/main.key\n");
	assert_string_equal(cfg->hostname, "mail.example.org");
	assert_string_equal(cfg->data_dir, "/srv/postern");
	assert_string_equal(cfg->user, "postern");
	assert_int_equal(cfg->workers, 4);
	assert_int_equal(cfg->log_level, LOG_LEVEL_DEBUG);
	assert_true(cfg->log_syslog);
	assert_true(cfg->allow_plaintext_auth);
	assert_int_equal(cfg->max_connections, 500);
	assert_int_equal(cfg->max_connections_per_ip, 5);
	assert_int_equal(cfg->line_length, 8192);
	assert_int_equal(cfg->message_size, 25 * 1048576);
	assert_int_equal(cfg->recipients, 50);
	assert_int_equal(cfg->imap_literal_max, 1073741824);
	assert_int_equal(cfg->imap_literal_max_preauth, 16384);
	assert_int_equal(cfg->smtp_timeout, 300);
	assert_int_equal(cfg->imap_timeout, 3600);
	assert_int_equal(cfg->pop3_timeout, 90);
	assert_int_equal(cfg->tls_handshake_timeout, 15);
	assert_int_equal(cfg->shutdown_grace, 0);
	assert_int_equal(cfg->nlisteners, 1);
	assert_string_equal(cfg->listeners[0].name, "mx");
	assert_string_equal(cfg->listeners[0].address, "192.0.2.1");
	assert_int_equal(cfg->listeners[0].port, 2525);
	assert_int_equal(cfg->listeners[0].proto, CONFIG_PROTO_SMTP);
	assert_int_equal(cfg->listeners[0].tls, CONFIG_TLS_STARTTLS);
	assert_int_equal(cfg->ncerts, 1);
	assert_string_equal(cfg->certs[0].name, "main");
	config_free(&cfg);
}

static void
test_config_listeners_kept_in_file_order(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(SERVER_LINES CERT_LINES
	    "[listener in]\n"
	    "port = 25\n"
	    "protocol = smtp\n"
	    "tls = starttls\n"
	    "[listener sub]\n"
	    "address = ::1\n"
	    "port = 465\n"
	    "protocol = Submission\n"
	    "tls = IMPLICIT\n"
	    "[listener imap]\n"
	    "address = 2001:db8::25\n"
	    "port = 143\n"
	    "protocol = imap\n"
	    "[listener pop]\n"
	    "address = 127.0.0.1\n"
	    "port = 25\n"
	    "protocol = pop3\n"
	    "tls = none\n"
	    "[listener web.1]\n"
	    "port = 0\n"
	    "protocol = http\n"
	    "[listener web_2]\n"
	    "port = 0\n"
	    "protocol = http\n");
	assert_int_equal(cfg->nlisteners, 6);

	assert_string_equal(cfg->listeners[0].name, "in");
	assert_string_equal(cfg->listeners[0].address, "0.0.0.0");
	assert_int_equal(cfg->listeners[0].port, 25);
	assert_int_equal(cfg->listeners[0].proto, CONFIG_PROTO_SMTP);
	assert_int_equal(cfg->listeners[0].tls, CONFIG_TLS_STARTTLS);

	assert_string_equal(cfg->listeners[1].name, "sub");
	assert_string_equal(cfg->listeners[1].address, "::1");
	assert_int_equal(cfg->listeners[1].port, 465);
	assert_int_equal(cfg->listeners[1].proto, CONFIG_PROTO_SUBMISSION);
	assert_int_equal(cfg->listeners[1].tls, CONFIG_TLS_IMPLICIT);

	assert_string_equal(cfg->listeners[2].name, "imap");
	assert_string_equal(cfg->listeners[2].address, "2001:db8::25");
	assert_int_equal(cfg->listeners[2].port, 143);
	assert_int_equal(cfg->listeners[2].proto, CONFIG_PROTO_IMAP);
	assert_int_equal(cfg->listeners[2].tls, CONFIG_TLS_NONE);

	/* The same port on another address is no conflict. */
	assert_string_equal(cfg->listeners[3].name, "pop");
	assert_string_equal(cfg->listeners[3].address, "127.0.0.1");
	assert_int_equal(cfg->listeners[3].port, 25);
	assert_int_equal(cfg->listeners[3].proto, CONFIG_PROTO_POP3);
	assert_int_equal(cfg->listeners[3].tls, CONFIG_TLS_NONE);

	/* Port 0 (any free port) may repeat. */
	assert_string_equal(cfg->listeners[4].name, "web.1");
	assert_int_equal(cfg->listeners[4].port, 0);
	assert_int_equal(cfg->listeners[4].proto, CONFIG_PROTO_HTTP);
	assert_string_equal(cfg->listeners[5].name, "web_2");
	assert_int_equal(cfg->listeners[5].port, 0);
	config_free(&cfg);
}

static void
test_config_listener_keys_may_come_in_two_parts(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(SERVER_LINES
	    "[listener a]\n"
	    "protocol = imap\n"
	    "[limits]\n"
	    "recipients = 7\n"
	    "[listener a]\n"
	    "port = 1143\n");
	assert_int_equal(cfg->nlisteners, 1);
	assert_int_equal(cfg->listeners[0].port, 1143);
	assert_int_equal(cfg->listeners[0].proto, CONFIG_PROTO_IMAP);
	assert_int_equal(cfg->recipients, 7);
	config_free(&cfg);
}

static void
test_config_certificates_kept_in_file_order(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(SERVER_LINES
	    "[certificate default]\n"
	    "key = /k/default.key\n"
	    "cert = /k/default.crt\n"
	    "[certificate other.example]\n"
	    "cert = /k/other.crt\n"
	    "key = /k/other.key\n"
	    "[listener imaps]\n"
	    "port = 993\n"
	    "protocol = imap\n"
	    "tls = implicit\n");
	assert_int_equal(cfg->ncerts, 2);
	assert_string_equal(cfg->certs[0].name, "default");
	assert_string_equal(cfg->certs[0].cert_file, "/k/default.crt");
	assert_string_equal(cfg->certs[0].key_file, "/k/default.key");
	assert_string_equal(cfg->certs[1].name, "other.example");
	assert_string_equal(cfg->certs[1].cert_file, "/k/other.crt");
	assert_string_equal(cfg->certs[1].key_file, "/k/other.key");
	config_free(&cfg);
}

static void
test_config_size_suffixes_multiply_by_1024(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(SERVER_LINES CERT_LINES
	    "[limits]\n"
	    "line_length = 64k\n"
	    "message_size = 50M\n"
	    "imap_literal_max = 1g\n"
	    "imap_literal_max_preauth = 2K\n");
	assert_int_equal(cfg->line_length, 65536);
	assert_int_equal(cfg->message_size, 52428800);
	assert_int_equal(cfg->imap_literal_max, 1073741824);
	assert_int_equal(cfg->imap_literal_max_preauth, 2048);
	config_free(&cfg);
}

static void
test_config_duration_suffixes_convert_to_seconds(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(SERVER_LINES CERT_LINES
	    "[timeouts]\n"
	    "smtp = 30s\n"
	    "pop3 = 5m\n"
	    "shutdown_grace = 1h\n"
	    "imap = 1d\n"
	    "tls_handshake = 45\n");
	assert_int_equal(cfg->smtp_timeout, 30);
	assert_int_equal(cfg->pop3_timeout, 300);
	assert_int_equal(cfg->shutdown_grace, 3600);
	assert_int_equal(cfg->imap_timeout, 86400);
	assert_int_equal(cfg->tls_handshake_timeout, 45);
	config_free(&cfg);
}

static void
test_config_boolean_spellings_accepted(void **state)
{
	static const struct {
		const char *text;
		bool value;
	} cases[] = {
		{ "yes", true }, { "no", false }, { "TRUE", true },
		{ "False", false }, { "on", true }, { "OFF", false },
		{ "1", true }, { "0", false },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *text = xasprintf(SERVER_LINES
		    "syslog = %s\n"
		    "allow_plaintext_auth = %s\n" CERT_LINES,
		    cases[i].text, cases[i].text);
		struct config *cfg = load_ok(text);

		assert_int_equal(cfg->log_syslog, cases[i].value);
		assert_int_equal(cfg->allow_plaintext_auth, cases[i].value);
		config_free(&cfg);
		free(text);
	}
}

static void
test_config_every_limit_accepts_its_range_ends(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(param_rows); i++) {
		const struct param_row *row = &param_rows[i];
		uint64_t ends[] = { row->min, row->max };

		for (size_t j = 0; j < ARRAY_LEN(ends); j++) {
			char *text = xasprintf(SERVER_LINES CERT_LINES
			    "[%s]\n%s = %llu\n", file_section(row), row->key,
			    (unsigned long long)ends[j]);
			struct config *cfg = load_ok(text);

			assert_int_equal(param_value(cfg, row), ends[j]);
			config_free(&cfg);
			free(text);
		}
	}
}

static void
test_config_crlf_file_accepted(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("[server]\r\n"
	    "data_dir = /var/lib/postern\r\n"
	    "[listener a]\r\n"
	    "port = 2525\r\n"
	    "protocol = smtp\r\n");
	assert_string_equal(cfg->data_dir, "/var/lib/postern");
	assert_int_equal(cfg->listeners[0].port, 2525);
	config_free(&cfg);
}

static void
test_config_line_at_inih_limit_accepted(void **state)
{
	/* "data_dir = /" and enough "d" for a line of INI_MAX_LINE - 1
	 * characters before the line end. */
	static const char *const ends[] = { "\n", "\r\n", "" };
	size_t dlen = INI_MAX_LINE - 1 - strlen("data_dir = /");

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(ends); i++) {
		char *d = xmalloc(dlen + 1);
		char *text;
		struct config *cfg;

		memset(d, 'd', dlen);
		d[dlen] = '\0';
		text = xasprintf(CERT_LINES "[server]\ndata_dir = /%s%s", d,
		    ends[i]);
		cfg = load_ok(text);
		assert_int_equal(strlen(cfg->data_dir), dlen + 1);
		config_free(&cfg);
		free(text);
		free(d);
	}
}

/* Files refused, each with the line that is wrong. */

static void
test_config_unknown_key_in_server_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES CERT_LINES
	    "[server]\n"
	    "colour = blue\n", 7, "colour", "unknown in section [server]");
}

static void
test_config_unknown_key_in_limits_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "[limits]\n"
	    "recipients = 5\n"
	    "max_recipients = 5\n", 5, "max_recipients",
	    "unknown in section [limits]");
}

static void
test_config_timeout_key_in_limits_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "[limits]\n"
	    "smtp = 5m\n", 4, "smtp", "unknown in section [limits]");
}

static void
test_config_unknown_key_in_listener_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "[listener a]\n"
	    "port = 25\n"
	    "backlog = 5\n", 5, "backlog",
	    "unknown in section [listener a]");
}

static void
test_config_unknown_key_in_certificate_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "[certificate a]\n"
	    "chain = /x\n", 4, "chain",
	    "unknown in section [certificate a]");
}

static void
test_config_unknown_section_refused(void **state)
{
	(void)state;
	assert_refused(SERVER_LINES
	    "[mailboxes]\n"
	    "inbox = yes\n", 4, "section [mailboxes]: unknown", NULL);
}

static void
test_config_listener_without_valid_name_refused(void **state)
{
	(void)state;
	assert_refused(SERVER_LINES
	    "[listener]\n"
	    "port = 25\n", 4, "section [listener]: unknown", NULL);
	assert_refused(SERVER_LINES
	    "[listener a b]\n"
	    "port = 25\n", 4, "section [listener a b]: unknown", NULL);
	assert_refused(SERVER_LINES
	    "[listenerx a]\n"
	    "port = 25\n", 4, "section [listenerx a]: unknown", NULL);
}

static void
test_config_key_before_any_section_refused(void **state)
{
	(void)state;
	assert_refused_key("data_dir = /x\n" SERVER_LINES, 1, "data_dir",
	    "outside any section");
}

static void
test_config_port_70000_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "[listener mx]\n"
	    "protocol = smtp\n"
	    "port = 70000\n", 5, "port", "'70000' is not a port number");
}

static void
test_config_port_not_a_number_refused(void **state)
{
	static const char *const bad[] = {
		"65536", "-1", "", "25a", "0x19", " 25x",
		"99999999999999999999",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		char *text = xasprintf(SERVER_LINES
		    "[listener mx]\n"
		    "port = %s\n"
		    "protocol = smtp\n", bad[i]);

		assert_refused_key(text, 4, "port", "is not a port number");
		free(text);
	}
}

static void
test_config_port_65535_accepted(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(SERVER_LINES
	    "[listener mx]\n"
	    "port = 65535\n"
	    "protocol = smtp\n");
	assert_int_equal(cfg->listeners[0].port, 65535);
	config_free(&cfg);
}

static void
test_config_listener_without_port_refused_at_header(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "[listener ok]\n"
	    "port = 25\n"
	    "protocol = smtp\n"
	    "\n"
	    "[listener broken]\n"
	    "protocol = imap\n"
	    "tls = none\n", 7, "port", "missing from [listener broken]");
}

static void
test_config_listener_without_protocol_refused_at_header(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "[listener broken]\n"
	    "port = 143\n", 3, "protocol", "missing from [listener broken]");
}

static void
test_config_unknown_protocol_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "[listener a]\n"
	    "port = 21\n"
	    "protocol = ftp\n", 5, "protocol",
	    "'ftp' is not one of smtp, submission, imap, pop3, http");
}

static void
test_config_unknown_tls_mode_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES CERT_LINES
	    "[listener a]\n"
	    "port = 993\n"
	    "protocol = imap\n"
	    "tls = ssl\n", 9, "tls",
	    "'ssl' is not one of none, starttls, implicit");
}

static void
test_config_host_name_address_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "[listener a]\n"
	    "address = localhost\n", 4, "address",
	    "'localhost' is not a numeric IPv4 or IPv6 address");
	assert_refused_key(SERVER_LINES
	    "[listener a]\n"
	    "address = 256.0.0.1\n", 4, "address", "256.0.0.1");
}

/* OAuth without issuer and audience would accept tokens minted for any
 * other application of the provider: refused at the oauth_jwks line. */
static void
test_config_oauth_jwks_needs_issuer_and_audience(void **state)
{
	struct config *cfg;

	(void)state;
	assert_refused_key(SERVER_LINES
	    "[auth]\n"
	    "oauth_jwks = /etc/postern/jwks.json\n", 4, "oauth_jwks",
	    "needs oauth_issuer and oauth_audience in [auth]");
	assert_refused_key(SERVER_LINES
	    "[auth]\n"
	    "oauth_issuer = https://id.example\n"
	    "oauth_jwks = /etc/postern/jwks.json\n", 5, "oauth_jwks",
	    "needs oauth_audience in [auth]");
	assert_refused_key(SERVER_LINES
	    "[auth]\n"
	    "oauth_jwks = /etc/postern/jwks.json\n"
	    "oauth_audience = mail\n", 4, "oauth_jwks",
	    "needs oauth_issuer in [auth]");
	cfg = load_ok(SERVER_LINES CERT_LINES
	    "[auth]\n"
	    "oauth_jwks = /etc/postern/jwks.json\n"
	    "oauth_audience = mail\n"
	    "oauth_issuer = https://id.example\n");
	assert_string_equal(cfg->oauth_jwks, "/etc/postern/jwks.json");
	config_free(&cfg);
}

/* [acme]: off by default, Let's Encrypt and HTTP-01 unless set; bad
 * values are refused naming their line. */
static void
test_config_acme_defaults_and_keys(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(SERVER_LINES CERT_LINES);
	assert_false(cfg->is_acme);
	assert_string_equal(cfg->acme_directory,
	    "https://acme-v02.api.letsencrypt.org/directory");
	assert_string_equal(cfg->acme_challenge, "http-01");
	assert_null(cfg->acme_contact);
	assert_null(cfg->acme_ca_file);
	assert_int_equal(cfg->acme_retry_first, 600);
	assert_int_equal(cfg->acme_retry_max, 86400);
	config_free(&cfg);
	cfg = load_ok(SERVER_LINES CERT_LINES
	    "[listener web]\n"
	    "port = 443\n"
	    "protocol = http\n"
	    "tls = implicit\n"
	    "[acme]\n"
	    "enabled = yes\n"
	    "directory = https://127.0.0.1:14000/dir\n"
	    "contact = admin@example.org\n"
	    "ca_file = /etc/postern/pebble.pem\n"
	    "challenge = tls-alpn-01\n"
	    "retry_first = 1m\n"
	    "retry_max = 2h\n");
	assert_true(cfg->is_acme);
	assert_string_equal(cfg->acme_directory, "https://127.0.0.1:14000/dir");
	assert_string_equal(cfg->acme_contact, "admin@example.org");
	assert_string_equal(cfg->acme_ca_file, "/etc/postern/pebble.pem");
	assert_string_equal(cfg->acme_challenge, "tls-alpn-01");
	assert_int_equal(cfg->acme_retry_first, 60);
	assert_int_equal(cfg->acme_retry_max, 7200);
	config_free(&cfg);
}

static void
test_config_acme_bad_values_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES "[acme]\n"
	    "directory = http://ca.example/dir\n", 4, "directory",
	    "is not an https:// URL");
	assert_refused_key(SERVER_LINES "[acme]\n"
	    "contact = not an address\n", 4, "contact",
	    "is not an address");
	assert_refused_key(SERVER_LINES "[acme]\n"
	    "ca_file = ca.pem\n", 4, "ca_file", "is not an absolute path");
	assert_refused_key(SERVER_LINES "[acme]\n"
	    "challenge = dns-01\n", 4, "challenge",
	    "is not http-01 or tls-alpn-01");
	assert_refused_key(SERVER_LINES "[acme]\n"
	    "enabled = maybe\n", 4, "enabled", "is not yes or no");
	assert_refused_key(SERVER_LINES "[acme]\n"
	    "retry_first = 0\n", 4, "retry_first", "out of range");
	assert_refused_key(SERVER_LINES "[acme]\n"
	    "renew = 1d\n", 4, "renew", "unknown in section [acme]");
	/* HTTP-01 needs a plain HTTP listener, TLS-ALPN-01 an HTTPS one. */
	assert_refused_key(SERVER_LINES CERT_LINES
	    "[listener web]\n"
	    "port = 443\n"
	    "protocol = http\n"
	    "tls = implicit\n"
	    "[acme]\n"
	    "enabled = yes\n", 11, "enabled",
	    "ACME http-01 needs a [listener NAME] with protocol = http and "
	    "tls = none");
	assert_refused_key(SERVER_LINES CERT_LINES
	    "[listener web]\n"
	    "port = 80\n"
	    "protocol = http\n"
	    "[acme]\n"
	    "enabled = yes\n"
	    "challenge = tls-alpn-01\n", 11, "challenge",
	    "needs a [listener NAME] with protocol = http and tls = implicit");
}

static void
test_config_relative_data_dir_refused(void **state)
{
	(void)state;
	assert_refused_key("[server]\n"
	    "hostname = mx.example.org\n"
	    "data_dir = var/lib/postern\n", 3, "data_dir",
	    "'var/lib/postern' is not an absolute path");
}

static void
test_config_missing_data_dir_refused_on_server_line(void **state)
{
	(void)state;
	assert_refused_key("; no data_dir\n"
	    "\n"
	    "[server]\n"
	    "hostname = mx.example.org\n" CERT_LINES, 3, "data_dir",
	    "missing from [server]");
}

static void
test_config_missing_data_dir_found_after_byte_order_mark(void **state)
{
	(void)state;
	assert_refused_key("\xEF\xBB\xBF[server]\n"
	    "hostname = mx.example.org\n", 1, "data_dir",
	    "missing from [server]");
}

static void
test_config_duplicate_port_on_same_address_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "[listener first]\n"
	    "port = 2525\n"
	    "protocol = smtp\n"
	    "[listener second]\n"
	    "address = 0.0.0.0\n"
	    "port = 2525\n"
	    "protocol = submission\n", 6, "port",
	    "2525 on 0.0.0.0 is already used by [listener first]");
}

static void
test_config_tls_listener_without_certificate_refused(void **state)
{
	(void)state;
	assert_refused_key("; no certificate\n"
	    SERVER_LINES
	    "[listener imaps]\n"
	    "port = 993\n"
	    "protocol = imap\n"
	    "tls = implicit\n", 2, "tls",
	    "no [certificate NAME] section");
}

/* The default listeners all use TLS, so a file with [server] alone is
 * refused until it names a certificate. */
static void
test_config_server_alone_refused_without_certificate(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES, 1, "tls",
	    "no [certificate NAME] section");
}

static void
test_config_certificate_without_key_refused_at_header(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "[certificate main]\n"
	    "cert = /etc/postern/main.crt\n"
	    "[listener a]\n"
	    "port = 25\n"
	    "protocol = smtp\n", 3, "key", "missing from [certificate main]");
}

static void
test_config_certificate_without_cert_refused_at_header(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES CERT_LINES
	    "\n"
	    "[certificate spare]\n"
	    "key = /etc/postern/spare.key\n", 7, "cert",
	    "missing from [certificate spare]");
}

static void
test_config_limit_out_of_range_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "[limits]\n"
	    "max_connections = 0\n", 4, "max_connections",
	    "0 is out of range (1 to 1000000)");
	assert_refused_key(SERVER_LINES
	    "[limits]\n"
	    "imap_literal_max = 2G\n", 4, "imap_literal_max",
	    "2147483648 is out of range (1024 to 2147483647)");
	assert_refused_key(SERVER_LINES
	    "[timeouts]\n"
	    "smtp = 2d\n", 4, "smtp", "172800 is out of range (1 to 86400)");
}

static void
test_config_every_limit_refuses_one_past_its_range(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(param_rows); i++) {
		const struct param_row *row = &param_rows[i];
		char key[64];
		char *text;

		snprintf(key, sizeof(key), "key '%s': ", row->key);
		text = xasprintf(SERVER_LINES "[%s]\n%s = %llu\n",
		    file_section(row), row->key,
		    (unsigned long long)row->max + 1);
		assert_refused(text, 4, key, "is out of range");
		free(text);
		if (row->min == 0)
			continue;
		text = xasprintf(SERVER_LINES "[%s]\n%s = %llu\n",
		    file_section(row), row->key,
		    (unsigned long long)row->min - 1);
		assert_refused(text, 4, key, "is out of range");
		free(text);
	}
}

static void
test_config_size_with_unknown_suffix_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "[limits]\n"
	    "message_size = 5x\n", 4, "message_size",
	    "'5x' is not a size");
	assert_refused_key(SERVER_LINES
	    "[limits]\n"
	    "message_size = 5 M\n", 4, "message_size", "is not a size");
}

static void
test_config_duration_with_unknown_suffix_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "[timeouts]\n"
	    "imap = 1w\n", 4, "imap", "'1w' is not a duration");
}

static void
test_config_count_with_suffix_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "[limits]\n"
	    "recipients = 1k\n", 4, "recipients",
	    "'1k' is not a whole number");
}

static void
test_config_bad_server_values_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "hostname = -mx.example.org\n", 3, "hostname",
	    "is not a host name");
	assert_refused_key(SERVER_LINES
	    "hostname = mx example\n", 3, "hostname", "is not a host name");
	assert_refused_key(SERVER_LINES
	    "workers = 257\n", 3, "workers", "0 to 256");
	assert_refused_key(SERVER_LINES
	    "workers = many\n", 3, "workers", "0 to 256");
	assert_refused_key(SERVER_LINES
	    "log_level = loud\n", 3, "log_level", "'loud' is not one of");
	assert_refused_key(SERVER_LINES
	    "user =\n", 3, "user", "empty user name");
	assert_refused_key(SERVER_LINES
	    "syslog = maybe\n", 3, "syslog", "'maybe' is not yes or no");
	assert_refused_key(SERVER_LINES
	    "allow_plaintext_auth = y\n", 3, "allow_plaintext_auth",
	    "'y' is not yes or no");
}

static void
test_config_trusted_networks_and_postmaster(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(SERVER_LINES
	    "trusted_networks = 127.0.0.1/32, 10.0.0.0/8 2001:db8::/32,"
	    "192.0.2.7\n"
	    "postmaster = admin@example.org\n" CERT_LINES);
	assert_int_equal(cfg->ntrusted_networks, 4);
	assert_string_equal(cfg->postmaster, "admin@example.org");
	assert_true(is_config_network_trusted(cfg, "127.0.0.1"));
	assert_false(is_config_network_trusted(cfg, "127.0.0.2"));
	assert_true(is_config_network_trusted(cfg, "10.255.1.2"));
	assert_false(is_config_network_trusted(cfg, "11.0.0.1"));
	assert_true(is_config_network_trusted(cfg, "192.0.2.7"));
	assert_false(is_config_network_trusted(cfg, "192.0.2.8"));
	assert_true(is_config_network_trusted(cfg, "2001:db8:1::5"));
	assert_false(is_config_network_trusted(cfg, "2001:db9::5"));
	/* An IPv4 client on a dual-stack socket. */
	assert_true(is_config_network_trusted(cfg, "::ffff:10.1.2.3"));
	assert_false(is_config_network_trusted(cfg, "not an address"));
	config_free(&cfg);
	/* Nothing is trusted by default, not even loopback. */
	cfg = load_ok(SERVER_LINES CERT_LINES);
	assert_int_equal(cfg->ntrusted_networks, 0);
	assert_null(cfg->postmaster);
	assert_false(is_config_network_trusted(cfg, "127.0.0.1"));
	config_free(&cfg);
	/* A prefix that is not on a byte boundary. */
	cfg = load_ok(SERVER_LINES
	    "trusted_networks = 172.16.0.0/12\n" CERT_LINES);
	assert_true(is_config_network_trusted(cfg, "172.31.255.255"));
	assert_false(is_config_network_trusted(cfg, "172.32.0.0"));
	config_free(&cfg);
}

static void
test_config_spf_section(void **state)
{
	struct config *cfg;

	(void)state;
	/* Defaults: checked, marked, loopback skipped (local mail). */
	cfg = load_ok(SERVER_LINES CERT_LINES);
	assert_true(cfg->is_spf_check);
	assert_false(cfg->is_spf_reject);
	assert_int_equal(cfg->spf_threads, 4);
	assert_int_equal(cfg->spf_timeout, 20);
	assert_true(is_config_spf_skipped(cfg, "127.0.0.1"));
	assert_true(is_config_spf_skipped(cfg, "127.9.9.9"));
	assert_true(is_config_spf_skipped(cfg, "::1"));
	assert_true(is_config_spf_skipped(cfg, "::ffff:127.0.0.2"));
	assert_false(is_config_spf_skipped(cfg, "192.0.2.1"));
	config_free(&cfg);
	cfg = load_ok(SERVER_LINES CERT_LINES "[spf]\ncheck = no\n"
	    "fail = reject\nskip_networks =\nthreads = 8\ntimeout = 1m\n");
	assert_false(cfg->is_spf_check);
	assert_true(cfg->is_spf_reject);
	assert_false(is_config_spf_skipped(cfg, "127.0.0.1"));
	assert_int_equal(cfg->spf_threads, 8);
	assert_int_equal(cfg->spf_timeout, 60);
	config_free(&cfg);
	assert_refused_key(SERVER_LINES CERT_LINES "[spf]\nfail = bounce\n",
	    7, "fail", "is not mark or reject");
	assert_refused_key(SERVER_LINES CERT_LINES
	    "[spf]\nskip_networks = 10.0.0.0/40\n", 7, "skip_networks",
	    "is not a list of networks");
	assert_refused_key(SERVER_LINES CERT_LINES "[spf]\nthreads = 0\n",
	    7, "threads", "");
}

static void
test_config_milter_sections(void **state)
{
	struct config *cfg;
	const struct config_milter *m;

	(void)state;
	cfg = load_ok(SERVER_LINES CERT_LINES
	    "[listener smtp]\nport = 25\nprotocol = smtp\n"
	    "milters = rspamd, clam\n"
	    "[milter rspamd]\nsocket = inet:127.0.0.1:11332\n"
	    "[milter clam]\nsocket = unix:/run/clamav/milter.sock\n"
	    "timeout = 2m\ndefault_action = reject\n");
	assert_int_equal(cfg->listeners[0].nmilters, 2);
	assert_string_equal(cfg->listeners[0].milters[1], "clam");
	m = config_milter_find(cfg, "rspamd");
	assert_non_null(m);
	assert_int_equal(m->timeout, 30);
	assert_int_equal(m->default_action, CONFIG_MILTER_TEMPFAIL);
	m = config_milter_find(cfg, "clam");
	assert_int_equal(m->timeout, 120);
	assert_int_equal(m->default_action, CONFIG_MILTER_REJECT);
	assert_null(config_milter_find(cfg, "other"));
	config_free(&cfg);
	cfg = load_ok(SERVER_LINES CERT_LINES
	    "[milter v6]\nsocket = inet:[::1]:9\n");
	config_free(&cfg);
	assert_refused_key(SERVER_LINES CERT_LINES
	    "[milter a]\nsocket = inet:localhost:11332\n", 7, "socket",
	    "is not inet:ADDRESS:PORT");
	assert_refused_key(SERVER_LINES CERT_LINES
	    "[milter a]\nsocket = unix:relative\n", 7, "socket",
	    "is not inet:ADDRESS:PORT");
	assert_refused_key(SERVER_LINES CERT_LINES
	    "[milter a]\nsocket = inet:127.0.0.1:11332\n"
	    "default_action = bounce\n", 8, "default_action",
	    "is not one of accept, tempfail, reject");
	assert_refused_key(SERVER_LINES CERT_LINES
	    "[milter a]\ntimeout = 0s\n", 7, "timeout", "");
	assert_refused_key(SERVER_LINES CERT_LINES
	    "[milter a]\ntimeout = 5s\n", 6, "socket",
	    "missing from [milter a]");
	assert_refused_key(SERVER_LINES CERT_LINES
	    "[listener smtp]\nport = 25\nprotocol = smtp\n"
	    "milters = nothere\n", 6, "milters", "no [milter nothere]");
	assert_refused_key(SERVER_LINES CERT_LINES
	    "[listener imap]\nport = 143\nprotocol = imap\n"
	    "milters = a\n[milter a]\nsocket = unix:/x\n", 6, "milters",
	    "only smtp and submission");
}

static void
test_config_bad_trusted_networks_and_postmaster_refused(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "trusted_networks = 10.0.0.0/33\n", 3, "trusted_networks",
	    "is not a list of networks");
	assert_refused_key(SERVER_LINES
	    "trusted_networks = 10.0.0.0/8, localhost\n", 3,
	    "trusted_networks", "is not a list of networks");
	assert_refused_key(SERVER_LINES
	    "trusted_networks = 2001:db8::/129\n", 3, "trusted_networks",
	    "is not a list of networks");
	assert_refused_key(SERVER_LINES
	    "trusted_networks = 10.0.0.0/x\n", 3, "trusted_networks",
	    "is not a list of networks");
	assert_refused_key(SERVER_LINES
	    "postmaster = admin\n", 3, "postmaster", "is not an address");
	assert_refused_key(SERVER_LINES
	    "postmaster = a b@example.org\n", 3, "postmaster",
	    "is not an address");
	assert_refused_key(SERVER_LINES
	    "postmaster = admin@\n", 3, "postmaster", "is not an address");
}

static void
test_config_syntax_error_refused_on_its_line(void **state)
{
	(void)state;
	assert_refused(SERVER_LINES CERT_LINES
	    "this is not ini\n", 6, "syntax error", NULL);
	assert_refused(SERVER_LINES
	    "[listener a\n"
	    "port = 25\n", 3, "syntax error", NULL);
}

static void
test_config_syntax_error_reported_before_later_bad_key(void **state)
{
	(void)state;
	assert_refused("[server]\n"
	    "oops\n"
	    "data_dir = relative\n", 2, "syntax error", NULL);
}

static void
test_config_bad_key_reported_before_later_syntax_error(void **state)
{
	(void)state;
	assert_refused_key("[server]\n"
	    "data_dir = relative\n"
	    "oops\n", 2, "data_dir", "not an absolute path");
}

static void
test_config_first_bad_key_reported(void **state)
{
	(void)state;
	assert_refused_key(SERVER_LINES
	    "[limits]\n"
	    "recipients = 0\n"
	    "max_connections = 0\n", 4, "recipients", "out of range");
}

static void
test_config_overlong_line_refused_on_its_line(void **state)
{
	size_t dlen = INI_MAX_LINE - strlen("data_dir = /");
	char *d = xmalloc(dlen + 1);
	char *text;

	(void)state;
	memset(d, 'd', dlen);
	d[dlen] = '\0';
	/* One character over inih's buffer: once silently cut in two. */
	text = xasprintf(CERT_LINES "[server]\ndata_dir = /%s\n"
	    "hostname = mx\n", d);
	assert_refused(text, 5, "line longer than", NULL);
	free(text);
	text = xasprintf(CERT_LINES "[server]\ndata_dir = /%s%s\n", d, d);
	assert_refused(text, 5, "line longer than", NULL);
	free(text);
	/* Even as a comment: its tail would be read as a line. */
	text = xasprintf(SERVER_LINES CERT_LINES "; %s%s\n", d, d);
	assert_refused(text, 6, "line longer than", NULL);
	free(text);
	free(d);
}

static void
test_config_long_section_name_refused(void **state)
{
	char name[64];
	char *text;
	struct config *cfg;

	(void)state;
	/* "listener " and 39 characters: the longest inih keeps whole. */
	memset(name, 'n', 39);
	name[39] = '\0';
	text = xasprintf(SERVER_LINES "[listener %s]\n"
	    "port = 25\nprotocol = smtp\n", name);
	cfg = load_ok(text);
	assert_string_equal(cfg->listeners[0].name, name);
	config_free(&cfg);
	free(text);

	/* Two names alike in their first 40 characters once merged. */
	memset(name, 'n', 50);
	name[50] = '\0';
	text = xasprintf(SERVER_LINES "[listener %s1]\n"
	    "port = 25\nprotocol = smtp\n"
	    "[listener %s2]\n"
	    "port = 26\nprotocol = smtp\n", name, name);
	assert_refused(text, 4, "section [listener nnnn", "name longer than");
	free(text);
}

static void
test_config_nul_byte_refused(void **state)
{
	static const char text[] = "[server]\n"
	    "data_dir = /var/lib/postern\0/etc\n"
	    CERT_LINES;

	(void)state;
	assert_refused_n(text, sizeof(text) - 1, 2, "line contains a NUL",
	    NULL);
}

static void
test_config_nonexistent_file_refused(void **state)
{
	char path[PATH_MAX + 32], err[512], want[PATH_MAX + 64];
	struct config *cfg;

	(void)state;
	snprintf(path, sizeof(path), "%s/test_config.no-such-file.conf",
	    tmp_dir);
	cfg = config_load(path, err, sizeof(err));
	assert_null(cfg);
	snprintf(want, sizeof(want), "%s: cannot open: %s", path,
	    strerror(ENOENT));
	assert_string_equal(err, want);
}

static void
test_config_error_cut_to_errlen(void **state)
{
	char path[PATH_MAX], err[16];
	struct config *cfg;
	static const char text[] = SERVER_LINES "colour = blue\n";

	(void)state;
	memset(err, 'x', sizeof(err));
	conf_write_n(text, strlen(text), path);
	cfg = config_load(path, err, sizeof(err));
	unlink(path);
	assert_null(cfg);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_memory_equal(err, path, sizeof(err) - 1);
}

/* Default listeners. */

static void
test_config_file_without_listeners_gets_seven_defaults(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(SERVER_LINES CERT_LINES);
	assert_default_listeners(cfg, geteuid() == 0);
	config_free(&cfg);
}

static void
test_config_one_listener_replaces_all_defaults(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok(SERVER_LINES
	    "[listener smtp]\n"
	    "port = 2500\n"
	    "protocol = smtp\n");
	assert_int_equal(cfg->nlisteners, 1);
	assert_int_equal(cfg->listeners[0].port, 2500);
	config_free(&cfg);
}

static void
test_config_default_listeners_standard_ports_for_root(void **state)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));

	(void)state;
	config_default_listeners(cfg, true);
	assert_default_listeners(cfg, true);
	config_free(&cfg);
}

static void
test_config_default_listeners_plus_10000_for_others(void **state)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));

	(void)state;
	config_default_listeners(cfg, false);
	assert_default_listeners(cfg, false);
	assert_int_equal(cfg->listeners[0].port, 10025);
	config_free(&cfg);
}

static void
test_config_free_of_null_is_harmless(void **state)
{
	struct config *cfg = NULL;

	(void)state;
	config_free(&cfg);
	assert_null(cfg);
}

static void
test_config_proto_and_tls_names(void **state)
{
	(void)state;
	assert_string_equal(config_proto_name(CONFIG_PROTO_SMTP), "smtp");
	assert_string_equal(config_proto_name(CONFIG_PROTO_SUBMISSION),
	    "submission");
	assert_string_equal(config_proto_name(CONFIG_PROTO_IMAP), "imap");
	assert_string_equal(config_proto_name(CONFIG_PROTO_POP3), "pop3");
	assert_string_equal(config_proto_name(CONFIG_PROTO_HTTP), "http");
	assert_string_equal(config_tls_name(CONFIG_TLS_NONE), "none");
	assert_string_equal(config_tls_name(CONFIG_TLS_STARTTLS), "starttls");
	assert_string_equal(config_tls_name(CONFIG_TLS_IMPLICIT), "implicit");
}

/* config_parse_size, config_parse_seconds, config_parse_bool. */

static void
test_config_parse_size_suffixes(void **state)
{
	static const struct {
		const char *text;
		uint64_t value;
	} cases[] = {
		{ "0", 0 }, { "4096", 4096 }, { "64k", 65536 },
		{ "64K", 65536 }, { "50M", 52428800 }, { "50m", 52428800 },
		{ "1G", 1073741824 }, { "1g", 1073741824 }, { "0k", 0 },
		{ "007", 7 },
		{ "18446744073709551615", UINT64_MAX },
		{ "17179869183G", UINT64_MAX - 1073741823 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		uint64_t v = 12345;

		assert_int_equal(config_parse_size(cases[i].text, &v), 0);
		assert_int_equal(v, cases[i].value);
	}
}

static void
test_config_parse_size_refuses_overflow_empty_and_junk(void **state)
{
	static const char *const bad[] = {
		"", "5x", "k", "-1", "+1", " 1", "1 ", "1kk", "1.5k", "0x10",
		"1kb", "99999999999999999999G", "99999999999999999999",
		"18446744073709551616", "17179869184G", "18014398509481984k",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		uint64_t v = 12345;

		if (config_parse_size(bad[i], &v) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_int_equal(v, 12345);
	}
}

static void
test_config_parse_seconds_suffixes(void **state)
{
	static const struct {
		const char *text;
		uint64_t value;
	} cases[] = {
		{ "0", 0 }, { "30", 30 }, { "30s", 30 }, { "5m", 300 },
		{ "1h", 3600 }, { "2h", 7200 }, { "1d", 86400 },
		{ "213503982334601d", 213503982334601ULL * 86400 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		uint64_t v = 12345;

		assert_int_equal(config_parse_seconds(cases[i].text, &v), 0);
		assert_int_equal(v, cases[i].value);
	}
}

static void
test_config_parse_seconds_refuses_overflow_empty_and_junk(void **state)
{
	static const char *const bad[] = {
		"", "5x", "1w", "s", "-5s", "5 s", "5ss", "1.5h",
		"213503982334602d", "99999999999999999999s",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		uint64_t v = 12345;

		if (config_parse_seconds(bad[i], &v) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_int_equal(v, 12345);
	}
}

static void
test_config_parse_bool_spellings(void **state)
{
	static const char *const yes[] = { "yes", "YES", "true", "On", "1" };
	static const char *const no[] = { "no", "No", "FALSE", "off", "0" };
	static const char *const bad[] = {
		"", "2", "y", "n", "yess", " yes", "yes ", "enabled",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
		bool v = false;

		assert_int_equal(config_parse_bool(yes[i], &v), 0);
		assert_true(v);
	}
	for (size_t i = 0; i < ARRAY_LEN(no); i++) {
		bool v = true;

		assert_int_equal(config_parse_bool(no[i], &v), 0);
		assert_false(v);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		bool v = true;

		if (config_parse_bool(bad[i], &v) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_true(v);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_minimal_file_gets_every_default),
		cmocka_unit_test(
		    test_config_defaults_match_the_documented_values),
		cmocka_unit_test(
		    test_config_plain_listener_needs_no_certificate),
		cmocka_unit_test(test_config_full_file_sets_every_key),
		cmocka_unit_test(test_config_listeners_kept_in_file_order),
		cmocka_unit_test(
		    test_config_listener_keys_may_come_in_two_parts),
		cmocka_unit_test(test_config_certificates_kept_in_file_order),
		cmocka_unit_test(test_config_size_suffixes_multiply_by_1024),
		cmocka_unit_test(
		    test_config_duration_suffixes_convert_to_seconds),
		cmocka_unit_test(test_config_boolean_spellings_accepted),
		cmocka_unit_test(
		    test_config_every_limit_accepts_its_range_ends),
		cmocka_unit_test(test_config_crlf_file_accepted),
		cmocka_unit_test(test_config_line_at_inih_limit_accepted),
		cmocka_unit_test(test_config_unknown_key_in_server_refused),
		cmocka_unit_test(test_config_unknown_key_in_limits_refused),
		cmocka_unit_test(test_config_timeout_key_in_limits_refused),
		cmocka_unit_test(test_config_unknown_key_in_listener_refused),
		cmocka_unit_test(
		    test_config_unknown_key_in_certificate_refused),
		cmocka_unit_test(test_config_unknown_section_refused),
		cmocka_unit_test(
		    test_config_listener_without_valid_name_refused),
		cmocka_unit_test(test_config_key_before_any_section_refused),
		cmocka_unit_test(test_config_port_70000_refused),
		cmocka_unit_test(test_config_port_not_a_number_refused),
		cmocka_unit_test(test_config_port_65535_accepted),
		cmocka_unit_test(
		    test_config_listener_without_port_refused_at_header),
		cmocka_unit_test(
		    test_config_listener_without_protocol_refused_at_header),
		cmocka_unit_test(test_config_unknown_protocol_refused),
		cmocka_unit_test(test_config_unknown_tls_mode_refused),
		cmocka_unit_test(test_config_host_name_address_refused),
		cmocka_unit_test(test_config_oauth_jwks_needs_issuer_and_audience),
		cmocka_unit_test(test_config_acme_defaults_and_keys),
		cmocka_unit_test(test_config_acme_bad_values_refused),
		cmocka_unit_test(test_config_relative_data_dir_refused),
		cmocka_unit_test(
		    test_config_missing_data_dir_refused_on_server_line),
		cmocka_unit_test(
		    test_config_missing_data_dir_found_after_byte_order_mark),
		cmocka_unit_test(
		    test_config_duplicate_port_on_same_address_refused),
		cmocka_unit_test(
		    test_config_tls_listener_without_certificate_refused),
		cmocka_unit_test(
		    test_config_server_alone_refused_without_certificate),
		cmocka_unit_test(
		    test_config_certificate_without_key_refused_at_header),
		cmocka_unit_test(
		    test_config_certificate_without_cert_refused_at_header),
		cmocka_unit_test(test_config_limit_out_of_range_refused),
		cmocka_unit_test(
		    test_config_every_limit_refuses_one_past_its_range),
		cmocka_unit_test(test_config_size_with_unknown_suffix_refused),
		cmocka_unit_test(
		    test_config_duration_with_unknown_suffix_refused),
		cmocka_unit_test(test_config_count_with_suffix_refused),
		cmocka_unit_test(test_config_bad_server_values_refused),
		cmocka_unit_test(test_config_syntax_error_refused_on_its_line),
		cmocka_unit_test(
		    test_config_syntax_error_reported_before_later_bad_key),
		cmocka_unit_test(
		    test_config_bad_key_reported_before_later_syntax_error),
		cmocka_unit_test(test_config_first_bad_key_reported),
		cmocka_unit_test(test_config_overlong_line_refused_on_its_line),
		cmocka_unit_test(test_config_long_section_name_refused),
		cmocka_unit_test(test_config_nul_byte_refused),
		cmocka_unit_test(test_config_nonexistent_file_refused),
		cmocka_unit_test(test_config_error_cut_to_errlen),
		cmocka_unit_test(
		    test_config_file_without_listeners_gets_seven_defaults),
		cmocka_unit_test(
		    test_config_one_listener_replaces_all_defaults),
		cmocka_unit_test(
		    test_config_default_listeners_standard_ports_for_root),
		cmocka_unit_test(
		    test_config_default_listeners_plus_10000_for_others),
		cmocka_unit_test(test_config_free_of_null_is_harmless),
		cmocka_unit_test(test_config_proto_and_tls_names),
		cmocka_unit_test(test_config_parse_size_suffixes),
		cmocka_unit_test(
		    test_config_parse_size_refuses_overflow_empty_and_junk),
		cmocka_unit_test(test_config_parse_seconds_suffixes),
		cmocka_unit_test(
		    test_config_parse_seconds_refuses_overflow_empty_and_junk),
		cmocka_unit_test(test_config_parse_bool_spellings),
		cmocka_unit_test(test_config_trusted_networks_and_postmaster),
		cmocka_unit_test(test_config_spf_section),
		cmocka_unit_test(test_config_milter_sections),
		cmocka_unit_test(
		    test_config_bad_trusted_networks_and_postmaster_refused),
	};

	return cmocka_run_group_tests(tests, setup_tmp_dir, NULL);
}
