/*
 * cli_serve: `postern serve`. Loads the configuration, binds and loads
 * certificates as root, drops privileges, starts the workers, then waits
 * on the main thread for SIGHUP (reload) and SIGTERM/SIGINT (drain, exit
 * 0). DESIGN.md, Process model.
 */
#include "cli/cli.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "acme/acme.h"
#include "auth/auth.h"
#include "authn/authn.h"
#include "http/http.h"
#include "imap/imap.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "net/net.h"
#include "pop3/pop3.h"
#include "queue/queue.h"
#include "smtp/smtp.h"
#include "store/store.h"

struct serve_state {
	const char *path;
	struct config *cfg;	/* current; owned by the server */
	struct net_server *srv;
	struct event_base *base;
	struct store *store;
	struct auth *auth;
	struct authn *authn;	/* SPF of inbound mail (issue #16) */
	struct smtp_ctx smtp;
	struct imap_ctx imap;
	struct pop3_ctx pop3;
	struct http_ctx http;
	bool has_pop3;
	struct queue_runner *queue;	/* outbound delivery (issue #8) */
	struct acme *acme;		/* NULL unless [acme] enabled */
};

/* The [auth] section as auth takes it (at start and on SIGHUP). */
static void
auth_settings_from(const struct config *cfg, struct auth_settings *as)
{
	auth_settings_default(as);
	as->proto_default[AUTH_PROTO_IMAP] = cfg->is_imap_default;
	as->proto_default[AUTH_PROTO_POP3] = cfg->is_pop3_default;
	as->proto_default[AUTH_PROTO_SUBMISSION] = cfg->is_submission_default;
	as->lockout_failures = (unsigned)cfg->lockout_failures;
	as->lockout_window = (unsigned)cfg->lockout_window;
	as->lockout_duration = (unsigned)cfg->lockout_duration;
	as->lockout_networks = (unsigned)cfg->lockout_networks;
	as->lockout_network_failures = (unsigned)cfg->lockout_network_failures;
	as->lockout_ipv4_prefix = (unsigned)cfg->lockout_ipv4_prefix;
	as->lockout_ipv6_prefix = (unsigned)cfg->lockout_ipv6_prefix;
	as->cache_ttl = (unsigned)cfg->auth_cache_ttl;
	as->hash_threads = (unsigned)cfg->hash_threads;
	as->oauth_issuer = cfg->oauth_issuer;
	as->oauth_audience = cfg->oauth_audience;
	as->oauth_jwks_file = cfg->oauth_jwks;
	as->data_dir = cfg->data_dir;
}

/* Opens the store and authentication, after the privilege drop so that
 * every file the store creates belongs to the run-as user. */
static int
services_open(struct serve_state *st, char *err, size_t errlen)
{
	const struct config *cfg = st->cfg;
	struct auth_settings as;

	st->store = store_open(cfg->data_dir, err, errlen);
	if (st->store == NULL)
		return -1;
	auth_settings_from(cfg, &as);
	st->auth = auth_new(st->store, &as, err, errlen);
	if (st->auth == NULL)
		return -1;
	{
		struct authn_settings ns = {
			.resolver = cfg->queue_resolver,
			.resolver_port = (uint16_t)cfg->queue_resolver_port,
			.threads = (unsigned)cfg->spf_threads,
			.psl_file = cfg->is_dmarc_check ?
			    cfg->dmarc_psl_file : NULL,
		};

		st->authn = authn_new(&ns, err, errlen);
		if (st->authn == NULL)
			return -1;
	}
	st->smtp.store = st->store;
	st->smtp.auth = st->auth;
	st->smtp.authn = st->authn;
	st->imap.store = st->store;
	st->imap.auth = st->auth;
	st->http.store = st->store;
	pop3_ctx_init(&st->pop3, st->store, st->auth);
	st->has_pop3 = true;
	st->queue = queue_runner_new(cfg, st->store, err, errlen);
	if (st->queue == NULL ||
	    queue_runner_start(st->queue, err, errlen) < 0)
		return -1;
	/* The certificate of an earlier run is served from the first
	 * connection on; the thread starts with the listeners. */
	if (cfg->is_acme) {
		st->acme = acme_new(cfg, st->store, err, errlen);
		if (st->acme == NULL)
			return -1;
	}
	return 0;
}

static void
services_close(struct serve_state *st)
{
	/* The runner and the ACME thread before the store they use. */
	acme_free(&st->acme);
	queue_runner_free(&st->queue);
	authn_free(&st->authn);
	auth_free(&st->auth);
	store_close(&st->store);
	if (st->has_pop3)
		pop3_ctx_deinit(&st->pop3);
	st->has_pop3 = false;
}

/* Passwords pass through memory: no core dumps of it (DESIGN.md,
 * Security posture). */
static void
core_dumps_disable(void)
{
	struct rlimit none = { 0, 0 };

	setrlimit(RLIMIT_CORE, &none);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static int
data_dir_prepare(const struct config *cfg, const struct passwd *pw)
{
	if (mkdir(cfg->data_dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "%s: data_dir %s: cannot create: %s\n",
		    cfg->path, cfg->data_dir, strerror(errno));
		return -1;
	}
	if (pw != NULL && chown(cfg->data_dir, pw->pw_uid, pw->pw_gid) < 0) {
		fprintf(stderr, "%s: data_dir %s: cannot give it to %s: %s\n",
		    cfg->path, cfg->data_dir, pw->pw_name, strerror(errno));
		return -1;
	}
	return 0;
}

/* Becomes the configured user; everything that needed root is done. */
static int
privileges_drop(const struct passwd *pw)
{
	if (pw == NULL)
		return 0;
	if (pw->pw_uid == 0) {
		log_warn(NULL, "server.privileges_kept user=%s reason=\"[server] "
		    "user names root\"", pw->pw_name);
		return 0;
	}
	if (setgroups(0, NULL) < 0 || initgroups(pw->pw_name, pw->pw_gid) < 0 ||
	    setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		fprintf(stderr, "postern: cannot become user %s: %s\n",
		    pw->pw_name, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		fprintf(stderr, "postern: still root after dropping "
		    "privileges\n");
		return -1;
	}
	log_info(NULL, "server.privileges_dropped user=%s uid=%u",
	    pw->pw_name, (unsigned)pw->pw_uid);
	return 0;
}

/* ---- Reload (SIGHUP) ---------------------------------------------------- */

static void
needs_restart(const char *key)
{
	log_warn(NULL, "config.reload_needs_restart key=%s "
	    "result=\"old value kept until postern restarts\"", key);
}

static bool
is_str_changed(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

/* A key that takes effect only at start: logged when it changed, and the
 * old value kept in the new configuration so that it says what runs. */
static void
keep_str(char **field, const char *old, const char *key)
{
	if (!is_str_changed(*field, old))
		return;
	needs_restart(key);
	free(*field);
	*field = old != NULL ? xstrdup(old) : NULL;
}

static void
keep_num(uint64_t *field, uint64_t old, const char *key)
{
	if (*field == old)
		return;
	needs_restart(key);
	*field = old;
}

/* Listeners are bound as root before the privilege drop: a change waits
 * for a restart. Each added, removed or changed one is named, and cfg gets
 * the running ones back. */
static void
keep_listeners(struct config *cfg, const struct config *old)
{
	bool is_changed = cfg->nlisteners != old->nlisteners;
	char key[96];

	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct config_listener *l = &cfg->listeners[i];
		bool found = false;

		for (size_t j = 0; j < old->nlisteners && !found; j++)
			found = is_config_listener_same(l, &old->listeners[j]);
		if (!found || i >= old->nlisteners ||
		    !is_config_listener_same(l, &old->listeners[i])) {
			is_changed = true;
			snprintf(key, sizeof(key), "listener.%s", l->name);
			needs_restart(key);
		}
	}
	for (size_t j = 0; j < old->nlisteners; j++) {
		bool found = false;

		for (size_t i = 0; i < cfg->nlisteners && !found; i++)
			found = strcmp(cfg->listeners[i].name,
			    old->listeners[j].name) == 0;
		if (!found) {
			is_changed = true;
			snprintf(key, sizeof(key), "listener.%s",
			    old->listeners[j].name);
			needs_restart(key);
		}
	}
	if (!is_changed)
		return;
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		free(cfg->listeners[i].name);
		free(cfg->listeners[i].address);
	}
	free(cfg->listeners);
	cfg->listeners = xcalloc(old->nlisteners, sizeof(*cfg->listeners));
	for (size_t i = 0; i < old->nlisteners; i++) {
		cfg->listeners[i] = old->listeners[i];
		cfg->listeners[i].name = xstrdup(old->listeners[i].name);
		cfg->listeners[i].address = xstrdup(old->listeners[i].address);
	}
	cfg->nlisteners = old->nlisteners;
}

/* What only a restart applies: the run-as user, the data directory, the
 * threads, the sockets, the queue's resolver and its being on at all. */
static void
keep_restart_keys(struct config *cfg, const struct config *old)
{
	keep_str(&cfg->data_dir, old->data_dir, "server.data_dir");
	keep_str(&cfg->user, old->user, "server.user");
	if (cfg->workers != old->workers) {
		needs_restart("server.workers");
		cfg->workers = old->workers;
	}
	keep_num(&cfg->hash_threads, old->hash_threads, "auth.hash_threads");
	keep_num(&cfg->spf_threads, old->spf_threads, "spf.threads");
	keep_str(&cfg->dmarc_psl_file, old->dmarc_psl_file, "dmarc.psl_file");
	keep_str(&cfg->queue_resolver, old->queue_resolver, "queue.resolver");
	keep_num(&cfg->queue_resolver_port, old->queue_resolver_port,
	    "queue.resolver_port");
	if ((cfg->queue_concurrency == 0) != (old->queue_concurrency == 0))
		keep_num(&cfg->queue_concurrency, old->queue_concurrency,
		    "queue.concurrency");
	/* The ACME thread copied its settings at start. */
	if (cfg->is_acme != old->is_acme) {
		needs_restart("acme.enabled");
		cfg->is_acme = old->is_acme;
	}
	keep_str(&cfg->acme_directory, old->acme_directory, "acme.directory");
	keep_str(&cfg->acme_contact, old->acme_contact, "acme.contact");
	keep_str(&cfg->acme_ca_file, old->acme_ca_file, "acme.ca_file");
	keep_str(&cfg->acme_challenge, old->acme_challenge, "acme.challenge");
	keep_num(&cfg->acme_retry_first, old->acme_retry_first,
	    "acme.retry_first");
	keep_num(&cfg->acme_retry_max, old->acme_retry_max, "acme.retry_max");
	keep_listeners(cfg, old);
}

/* SIGHUP: everything that can change while running does -- [server]
 * hostname, logging and allow_plaintext_auth, [auth] (the JWKS file read
 * again), [queue], limits, timeouts and certificates -- and each key that
 * needs a restart is named in the log. A file that does not load, or a
 * JWKS or certificate that does not, changes nothing. */
static void
on_reload(evutil_socket_t sig, short what, void *arg)
{
	struct serve_state *st = arg;
	struct auth_settings as;
	char err[1024];
	struct config *cfg;

	(void)sig;
	(void)what;
	cfg = config_load(st->path, err, sizeof(err));
	if (cfg == NULL) {
		log_error(NULL, "config.reload_failed error=\"%s\" "
		    "result=\"old configuration kept\"", err);
		return;
	}
	keep_restart_keys(cfg, st->cfg);
	auth_settings_from(cfg, &as);
	if (auth_reload(st->auth, &as, err, sizeof(err)) < 0) {
		log_error(NULL, "config.reload_failed error=\"%s: %s\" "
		    "result=\"old configuration kept\"", st->path, err);
		config_free(&cfg);
		return;
	}
	if (net_server_reload(st->srv, cfg, err, sizeof(err)) < 0) {
		char err2[1024];

		log_error(NULL, "config.reload_failed error=\"%s\" "
		    "result=\"old configuration kept\"", err);
		config_free(&cfg);
		auth_settings_from(st->cfg, &as);
		if (auth_reload(st->auth, &as, err2, sizeof(err2)) < 0)
			log_error(NULL, "auth.reload_failed error=\"%s\" "
			    "result=\"new [auth] settings kept\"", err2);
		return;
	}
	if (st->queue != NULL)
		queue_runner_reload(st->queue, cfg);
	st->cfg = cfg;
	log_configure(cfg->log_level, cfg->log_syslog);
	log_info(NULL, "config.reloaded path=%s certificates=%zu sections=\""
	    "server auth queue limits timeouts certificates\"", st->path,
	    cfg->ncerts);
}

static void
on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct serve_state *st = arg;

	(void)what;
	log_info(NULL, "server.stopping signal=%s grace_seconds=%llu",
	    sig == SIGINT ? "SIGINT" : "SIGTERM",
	    (unsigned long long)st->cfg->shutdown_grace);
	auth_stop(st->auth);
	event_base_loopbreak(st->base);
}

int
cli_serve(int argc, char **argv)
{
	static const char usage[] = "postern serve [-c FILE]";
	struct serve_state st = { 0 };
	const struct passwd *pw = NULL;
	struct event *sighup, *sigterm, *sigint;
	char err[1024];

	if (cli_parse_config_option(argc, argv, usage, &st.path) < 0)
		return CLI_EXIT_USAGE;
	st.cfg = config_load(st.path, err, sizeof(err));
	if (st.cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return CLI_EXIT_USAGE;
	}
	if (net_certs_check(st.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		config_free(&st.cfg);
		return CLI_EXIT_USAGE;
	}
	/* Sessions parse what anyone on the Internet sends: never as root
	 * by accident. user = root says it on purpose. */
	if (geteuid() == 0 && st.cfg->user == NULL) {
		fprintf(stderr, "%s:%d: key 'user': missing from [server]: "
		    "postern will not serve as root; set user = postern (an "
		    "unprivileged system user, which `make run` creates: "
		    "useradd --system --no-create-home --shell "
		    "/usr/sbin/nologin postern)\n", st.path,
		    config_section_line(st.cfg, "server"));
		config_free(&st.cfg);
		return CLI_EXIT_USAGE;
	}
	log_configure(st.cfg->log_level, st.cfg->log_syslog);
	metrics_start();
	core_dumps_disable();
	signal(SIGPIPE, SIG_IGN);
	if (st.cfg->user != NULL && geteuid() == 0) {
		pw = getpwnam(st.cfg->user);
		if (pw == NULL) {
			fprintf(stderr, "%s: key 'user': no such user '%s'\n",
			    st.path, st.cfg->user);
			config_free(&st.cfg);
			return CLI_EXIT_USAGE;
		}
	}
	if (data_dir_prepare(st.cfg, pw) < 0) {
		config_free(&st.cfg);
		return CLI_EXIT_FAIL;
	}
	st.srv = net_server_new(st.cfg, err, sizeof(err));
	if (st.srv == NULL) {
		fprintf(stderr, "postern: %s\n", err);
		config_free(&st.cfg);
		return CLI_EXIT_FAIL;
	}
	if (privileges_drop(pw) < 0) {
		net_server_free(&st.srv);
		return CLI_EXIT_FAIL;
	}
	if (services_open(&st, err, sizeof(err)) < 0) {
		fprintf(stderr, "postern: %s\n", err);
		services_close(&st);
		net_server_free(&st.srv);
		return CLI_EXIT_FAIL;
	}
	net_server_set_ops(st.srv, CONFIG_PROTO_SMTP, &smtp_session_ops,
	    &st.smtp);
	net_server_set_ops(st.srv, CONFIG_PROTO_SUBMISSION, &smtp_session_ops,
	    &st.smtp);
	net_server_set_ops(st.srv, CONFIG_PROTO_IMAP, &imap_session_ops,
	    &st.imap);
	net_server_set_ops(st.srv, CONFIG_PROTO_POP3, &pop3_session_ops,
	    &st.pop3);
	net_server_set_ops(st.srv, CONFIG_PROTO_HTTP, &http_session_ops,
	    &st.http);

	st.base = event_base_new();
	sighup = evsignal_new(st.base, SIGHUP, on_reload, &st);
	sigterm = evsignal_new(st.base, SIGTERM, on_stop, &st);
	sigint = evsignal_new(st.base, SIGINT, on_stop, &st);
	evsignal_add(sighup, NULL);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	if (net_server_start(st.srv, err, sizeof(err)) < 0) {
		fprintf(stderr, "postern: %s\n", err);
		net_server_free(&st.srv);
		services_close(&st);
		return CLI_EXIT_FAIL;
	}
	if (st.acme != NULL && acme_start(st.acme, err, sizeof(err)) < 0) {
		fprintf(stderr, "postern: %s\n", err);
		net_server_stop(st.srv);
		services_close(&st);
		net_server_free(&st.srv);
		return CLI_EXIT_FAIL;
	}
	event_base_dispatch(st.base);

	/* Workers first, then the store and auth finish what sessions
	 * started (their completions wait in the stopped loops), then the
	 * loops run once more to deliver them. */
	net_server_stop(st.srv);
	services_close(&st);
	net_server_free(&st.srv);
	event_free(sighup);
	event_free(sigterm);
	event_free(sigint);
	event_base_free(st.base);
	log_info(NULL, "server.stopped");
	return CLI_EXIT_OK;
}
