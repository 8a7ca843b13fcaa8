/*
 * libFuzzer harness for lib/config: each input is written to a temporary
 * file and loaded with config_load(). A refusal must be one line that
 * starts with the file name; an accepted configuration must hold what
 * config.h promises (absolute data_dir, complete and distinct listeners,
 * a certificate when TLS is used, every limit in its range).
 *
 * Build and run: see fuzz/README.md.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "lib/config.h"

struct param_range {
	size_t offset;
	uint64_t min, max;
};

static const struct param_range ranges[] = {
#define PARAM_RANGE(section, key, field, def, min, max, kind) \
	{ offsetof(struct config, field), min, max },
	CONFIG_PARAMS(PARAM_RANGE)
#undef PARAM_RANGE
};

/* The temporary file, unlinked at once and reached through /proc so that
 * no run leaves files behind, however it ends. */
static char path[64];
static int fd = -1;

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_config: invariant broken: %s\n", what);
		abort();
	}
}

static void
tmp_open(void)
{
	const char *dir = getenv("TMPDIR");
	char name[4096];

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	snprintf(name, sizeof(name), "%s/fuzz_config.XXXXXX", dir);
	fd = mkstemp(name);
	if (fd < 0) {
		perror("fuzz_config: mkstemp");
		abort();
	}
	unlink(name);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
}

static bool
is_numeric_address(const char *s)
{
	unsigned char tmp[16];

	return inet_pton(AF_INET, s, tmp) == 1 ||
	    inet_pton(AF_INET6, s, tmp) == 1;
}

/* Returns line n (from 1) of data, or NULL; *len_out gets its length. */
static const char *
nth_line(const uint8_t *data, size_t size, long n, size_t *len_out)
{
	const uint8_t *p = data, *end = data + size;

	for (long i = 1; p < end; i++) {
		const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
		size_t len = lf ? (size_t)(lf - p) : (size_t)(end - p);

		if (i == n) {
			*len_out = len;
			return (const char *)p;
		}
		if (lf == NULL)
			break;
		p = lf + 1;
	}
	return NULL;
}

/* True if the line, leading white space skipped as inih does, starts
 * with prefix. */
static bool
line_starts_with(const char *line, size_t len, const char *prefix)
{
	size_t plen = strlen(prefix);

	if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
		line += 3;
		len -= 3;
	}
	while (len > 0 && isspace((unsigned char)*line)) {
		line++;
		len--;
	}
	return len >= plen && memcmp(line, prefix, plen) == 0;
}

/* Checks "FILE:LINE: what": the line exists, and an error about a whole
 * section points at that section's header. Only the fixed words of a
 * message are trusted: names and values in it come from the input. */
static void
check_error(const char *err, const uint8_t *data, size_t size)
{
	size_t plen = strlen(path), len = 0;
	const char *what, *after = NULL, *line;
	bool is_missing, is_conflict, is_tls;
	char *end;
	long n;

	check(strncmp(err, path, plen) == 0 && err[plen] == ':',
	    "error starts with FILE:");
	check(strchr(err, '\n') == NULL, "error is one line");
	n = strtol(err + plen + 1, &end, 10);
	check(end != err + plen + 1 && strncmp(end, ": ", 2) == 0,
	    "error has a line number");
	what = end + 2;
	/* inih ends a key at '=' or ':', so "': " closes the key name. */
	if (strncmp(what, "key '", 5) == 0) {
		const char *q = strstr(what + 5, "': ");

		check(q != NULL, "key name closed");
		after = q + 3;
	}
	is_missing = after != NULL &&
	    strncmp(after, "missing from [", 14) == 0;
	is_conflict = strncmp(what, "key 'port': ", 12) == 0 &&
	    isdigit((unsigned char)what[12]);
	is_tls = strncmp(what, "key 'tls': listeners use TLS", 28) == 0;
	if (n == 0) {
		check(is_tls || (is_missing &&
		    strncmp(after + 13, "[server]", 8) == 0),
		    "line 0 only when there is no [server]");
		return;
	}
	line = nth_line(data, size, n, &len);
	check(line != NULL, "error line exists");
	if (is_missing) {
		/* The section name is a valid name: no ']' inside. */
		const char *close = strchr(after + 13, ']');
		char header[128];

		check(close != NULL, "section name closed");
		snprintf(header, sizeof(header), "%.*s",
		    (int)(close - (after + 13) + 1), after + 13);
		check(line_starts_with(line, len, header),
		    "missing key reported at its section header");
	}
	if (is_conflict)
		check(line_starts_with(line, len, "[listener "),
		    "port conflict reported at a listener header");
	if (is_tls)
		check(line_starts_with(line, len, "[server]"),
		    "TLS without certificate reported at [server]");
}

static void
check_config(const struct config *cfg)
{
	bool needs_tls = false;

	check(strcmp(cfg->path, path) == 0, "path kept");
	check(cfg->data_dir != NULL && cfg->data_dir[0] == '/',
	    "data_dir absolute");
	check(cfg->hostname != NULL && cfg->hostname[0] != '\0',
	    "hostname set");
	check(cfg->workers <= 256, "workers in range");
	check(cfg->nlisteners > 0, "some listener");
	check(cfg->mtasts_mode <= CONFIG_MTASTS_NONE, "mta-sts mode");
	check(cfg->acme_directory != NULL &&
	    strncmp(cfg->acme_directory, "https://", 8) == 0,
	    "acme directory https");
	check(cfg->acme_challenge != NULL &&
	    (strcmp(cfg->acme_challenge, "http-01") == 0 ||
	    strcmp(cfg->acme_challenge, "tls-alpn-01") == 0),
	    "acme challenge");
	check(cfg->acme_ca_file == NULL || cfg->acme_ca_file[0] == '/',
	    "acme ca_file absolute");
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct config_listener *l = &cfg->listeners[i];

		check(l->name != NULL && l->name[0] != '\0', "listener name");
		check(l->address != NULL && is_numeric_address(l->address),
		    "listener address");
		check(l->proto <= CONFIG_PROTO_HTTP, "listener protocol");
		check(l->tls <= CONFIG_TLS_IMPLICIT, "listener tls");
		check(config_proto_name(l->proto) != NULL, "protocol name");
		check(config_tls_name(l->tls) != NULL, "tls name");
		if (l->tls != CONFIG_TLS_NONE)
			needs_tls = true;
		for (size_t j = 0; j < i; j++) {
			const struct config_listener *o = &cfg->listeners[j];

			check(strcmp(o->name, l->name) != 0, "names distinct");
			check(l->port == 0 || o->port != l->port ||
			    strcmp(o->address, l->address) != 0,
			    "ports distinct");
		}
	}
	for (size_t i = 0; i < cfg->ncerts; i++) {
		const struct config_cert *c = &cfg->certs[i];

		check(c->name != NULL && c->cert_file != NULL &&
		    c->key_file != NULL, "certificate complete");
	}
	check(!needs_tls || cfg->ncerts > 0, "certificate for TLS");
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		uint64_t v = *(const uint64_t *)((const char *)cfg +
		    ranges[i].offset);

		check(v >= ranges[i].min && v <= ranges[i].max,
		    "limit in range");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct config *cfg;

	if (fd < 0)
		tmp_open();
	if (ftruncate(fd, 0) != 0 ||
	    pwrite(fd, data, size, 0) != (ssize_t)size) {
		perror("fuzz_config: write");
		abort();
	}
	err[0] = '\0';
	cfg = config_load(path, err, sizeof(err));
	if (cfg == NULL) {
		check_error(err, data, size);
		return 0;
	}
	check_config(cfg);
	config_free(&cfg);
	check(cfg == NULL, "config_free clears the pointer");
	return 0;
}
