/*
 * net: listeners, connections, TLS and connection limits. The main thread
 * creates a net_server from the configuration (binding every listener,
 * loading certificates) before it drops privileges, then starts it: one
 * worker thread per core, each with its own event_base and its own
 * SO_REUSEPORT socket per listener. A connection belongs to one worker for
 * life. Protocols plug in through struct net_session_ops; net never knows
 * what SMTP, IMAP or POP3 are.
 */
#ifndef POSTERN_NET_H
#define POSTERN_NET_H

#include <stdbool.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/buf.h"
#include "lib/config.h"

struct net_server;
struct net_conn;

/* Streaming sessions keep at most about this much queued for a client. */
#define NET_DRAIN_LOW (64 * 1024)

/*
 * What a protocol provides. Every callback runs on the connection's worker
 * thread. A session never frees its connection: it calls net_conn_close()
 * and net calls close() once the connection is gone.
 */
struct net_session_ops {
	/* Starts a session on a ready connection (after the handshake of
	 * an implicit TLS listener) and sends the greeting. Returns the
	 * session. */
	void *(*open)(struct net_conn *c);
	/* New bytes are in in; the session consumes what it parsed. */
	void (*input)(void *session, struct net_conn *c, struct buf *in);
	/* The client was idle for the protocol's timeout: say goodbye. The
	 * connection is closed after this returns. */
	void (*timeout)(void *session, struct net_conn *c);
	/* The server is shutting down: say goodbye. The connection is
	 * closed after this returns. */
	void (*shutdown)(void *session, struct net_conn *c);
	/* Frees the session; the connection is already gone. */
	void (*close)(void *session);
	/* Optional: the output has drained below NET_DRAIN_LOW bytes; a
	 * session streaming a large reply writes its next piece here. */
	void (*drained)(void *session, struct net_conn *c);
	/* Refuses a connection over a limit, without a session; reason is a
	 * sentence such as "Too many connections from your address". */
	void (*refuse)(struct net_conn *c, const char *reason);
};

/* Binds every listener of cfg and loads its certificates; runs as root
 * when ports are below 1024. Returns a server, or NULL with a one-line
 * message in err. Takes cfg when it succeeds; the caller may keep reading
 * it until a reload replaces it. */
struct net_server *net_server_new(const struct config *cfg, char *err,
    size_t errlen);

/* Loads every certificate of cfg to see that it works. Returns 0, or -1
 * with a line naming the file and the problem in err. */
int net_certs_check(const struct config *cfg, char *err, size_t errlen);

/* Serves protocol with ops (before net_server_start); every connection of
 * it gets ctx (net_conn_ctx), e.g. the store and auth the protocol uses. */
void net_server_set_ops(struct net_server *srv, enum config_proto proto,
    const struct net_session_ops *ops, void *ctx);

/* Starts the worker threads. Returns 0 or -1 with err set. */
int net_server_start(struct net_server *srv, char *err, size_t errlen);

/* Makes new connections use cfg (limits, timeouts, certificates); open
 * sessions keep what they started with. Returns 0, or -1 with err set and
 * the old configuration still in use. Takes cfg when it returns 0 (the
 * old one is freed once its last connection ends). */
int net_server_reload(struct net_server *srv, const struct config *cfg,
    char *err, size_t errlen);

/* Stops accepting, gives open sessions the configured grace period, then
 * tells the rest goodbye and waits for every worker to end. */
void net_server_stop(struct net_server *srv);

void net_server_free(struct net_server **srv);

/* The connection's session id, for logs. */
const char *net_conn_sid(const struct net_conn *c);
/* The ctx given with the protocol's ops. */
void *net_conn_ctx(const struct net_conn *c);
/* The configuration the connection started with. */
const struct config *net_conn_config(const struct net_conn *c);
const struct config_listener *net_conn_listener(const struct net_conn *c);
/* The port listener l (one of net_conn_config(c)'s listeners) is bound
 * to: its configured port, or the one the kernel chose for port 0. */
unsigned net_conn_listener_port(const struct net_conn *c,
    const struct config_listener *l);
/* The client's address, printable. */
const char *net_conn_peer(const struct net_conn *c);
bool is_net_conn_tls(const struct net_conn *c);
/* "TLSv1.3" and the cipher name, or NULL without TLS. */
const char *net_conn_tls_version(const struct net_conn *c);
const char *net_conn_tls_cipher(const struct net_conn *c);

/* Bytes queued for the client and not yet sent. */
size_t net_conn_pending(const struct net_conn *c);

/* Queues bytes for the client. */
void net_conn_write(struct net_conn *c, const void *data, size_t len);
void net_conn_printf(struct net_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Signs len bytes of data as PKCS#7 SignedData (DER, content attached)
 * with the certificate of the connection's configuration that covers host
 * (else the default one), e.g. an Apple configuration profile. Returns 0
 * with *der_out (caller frees) and *len_out, or -1 when there is no
 * certificate or signing failed. */
int net_conn_sign(const struct net_conn *c, const char *host,
    const void *data, size_t len, unsigned char **der_out,
    size_t *len_out);

/* Starts TLS on a plaintext connection once what was written so far (the
 * "go ahead" reply) has been sent. Every byte the client sent after the
 * command is thrown away unread (RFC 3207 §4.2, the CVE-2011-0411 class).
 * Returns 0, or -1 if the listener has no certificate or TLS is already
 * on. */
int net_conn_starttls(struct net_conn *c);
/* Compresses both directions from now on (IMAP COMPRESS=DEFLATE, RFC
 * 4978): what is written after this call goes out compressed (over TLS
 * when TLS is on), and what the client sends next is inflated. As with
 * STARTTLS, bytes of the current input after the command are thrown
 * away. Returns -1 when compression is already on. */
int net_conn_compress(struct net_conn *c);
bool is_net_conn_compressed(const struct net_conn *c);

/*
 * Feeding input. input() is called only while nothing holds it back: the
 * session's own pause, a wait, a delay, or replies piling up unread (at
 * least NET_DRAIN_LOW bytes queued: reading resumes once they drain).
 * Bytes that arrive meanwhile wait in the connection; when input resumes
 * they are fed first, on a later loop turn. A session's input() loops
 * "while (is_net_conn_feeding(c))" so that it stops at once after a
 * QUIT, a pause or a delay, even with more commands in the buffer.
 */
bool is_net_conn_feeding(struct net_conn *c);
/* Whether net_conn_close() was called or the client went away. */
bool is_net_conn_closing(const struct net_conn *c);
/* The session stops reading while a command runs, and reads on. */
void net_conn_pause(struct net_conn *c);
void net_conn_resume(struct net_conn *c);
/* The session is about to hand itself to a callback (auth, the store):
 * input stops until the callback calls net_conn_unwait(). The session is
 * never freed while a callback is awaited. */
void net_conn_wait(struct net_conn *c);
/* The first call of such a callback. Returns true to carry on; false when
 * the connection closed meanwhile: return at once without writing (the
 * session is still valid and is freed after this loop turn). */
bool net_conn_unwait(struct net_conn *c);
bool is_net_conn_waiting(const struct net_conn *c);
/* Reads nothing for ms milliseconds (a tarpit for clients that keep
 * erring). The timer belongs to the connection and dies with it. */
void net_conn_delay(struct net_conn *c, unsigned ms);
/* The user logged in: the idle timeout becomes the protocol's own, and
 * the login deadline ([timeouts] prelogin, login_deadline) ends. */
void net_conn_logged_in(struct net_conn *c);
/* The event loop of the connection's worker, for asynchronous calls. */
struct event_base *net_conn_base(const struct net_conn *c);

/* Sends what is queued, then closes. No callback of the session runs
 * afterwards except close(), on a later loop turn. */
void net_conn_close(struct net_conn *c);

/* Writes a new self-signed certificate (RSA 2048, SHA-256, valid ten
 * years) for the given DNS names to cert_path and its key to key_path
 * (mode 0600); both must not exist yet (O_EXCL, no link followed).
 * Returns 0, or -1 with err set. */
int tls_selfsigned_write(const char *const *names, size_t nnames,
    const char *cert_path, const char *key_path, char *err, size_t errlen);

/* TLS for connections postern opens (the queue runner's SMTP client;
 * tls_client.c). */
struct bufferevent;
struct event_base;
struct net_tls_client;

/* A client context: TLS 1.2 or later, the system's roots. Returns NULL
 * with err set. */
struct net_tls_client *net_tls_client_new(char *err, size_t errlen);
void net_tls_client_free(struct net_tls_client **t);
/* Starts a TLS handshake over the connected bufferevent under, sending
 * host as SNI (may be NULL). With is_verify the handshake fails unless the
 * peer's certificate chains to a trusted root and names host; without, any
 * certificate is taken (opportunistic, RFC 7435). Returns the bufferevent
 * to use from now on (freeing it frees under), or NULL. */
struct bufferevent *net_tls_client_wrap(struct net_tls_client *t,
    struct event_base *base, struct bufferevent *under, const char *host,
    bool is_verify);
/* "TLSv1.3" for a bufferevent net_tls_client_wrap() made, else NULL. */
const char *net_tls_bev_version(struct bufferevent *bev);
/* Whether the peer's certificate verified (chain and name). */
bool is_net_tls_bev_verified(struct bufferevent *bev);

/* A blocking TLS client over a connected socket (postern migrate, which
 * runs without an event loop; tls_stream.c). The socket's SO_RCVTIMEO and
 * SO_SNDTIMEO bound every read and write. The peer's certificate must
 * chain to the system's roots, or to ca_file when not NULL, and name host
 * (a DNS name or an IP address), unless is_insecure. Returns NULL with
 * err set (the verification failure named). The socket stays the
 * caller's. */
struct net_tls_stream;
struct net_tls_stream *net_tls_stream_new(int fd, const char *host,
    const char *ca_file, bool is_insecure, char *err, size_t errlen);
/* Bytes read (> 0), 0 at the peer's close, -1 on an error or timeout. */
ssize_t net_tls_stream_read(struct net_tls_stream *t, void *buf, size_t len);
/* Writes all len bytes. Returns 0, or -1. */
int net_tls_stream_write(struct net_tls_stream *t, const void *buf,
    size_t len);
void net_tls_stream_free(struct net_tls_stream **t);

/* Private keys besides TLS (tls_key.c): DKIM signing keys. */
enum net_key_type {
	NET_KEY_RSA,		/* 2048 bits; DKIM rsa-sha256 */
	NET_KEY_ED25519,	/* DKIM ed25519-sha256, RFC 8463 */
};

struct net_key;

/* Makes a new key and writes it as PEM to path, a new file (mode 0600;
 * an existing file or link there is an error). Returns 0 with *pub_out
 * the public key as DKIM publishes it (RFC 6376 §3.6.1 p=, base64;
 * caller frees), or -1 with err set. */
int net_key_generate(enum net_key_type type, const char *path,
    char **pub_out, char *err, size_t errlen);
/* Reads a PEM private key (RSA or Ed25519). NULL with err set. */
struct net_key *net_key_load(const char *path, char *err, size_t errlen);
enum net_key_type net_key_type_of(const struct net_key *k);
/* The public key as DKIM publishes it (base64; caller frees), or NULL. */
char *net_key_public_b64(const struct net_key *k);
void net_key_free(struct net_key **k);
/* Signs len bytes of data: RSASSA-PKCS1-v1_5 with SHA-256, or Ed25519
 * over their SHA-256 (RFC 8463 §3). Returns 0 with *sig_out (caller
 * frees) and *len_out, or -1. */
int net_key_sign(const struct net_key *k, const void *data, size_t len,
    unsigned char **sig_out, size_t *len_out);

/* ACME (RFC 8555): what src/acme needs of OpenSSL (tls_acme.c). */

/* Names one certificate may hold (Let's Encrypt takes at most 100), and so
 * the challenges that may be pending at once: one per name. */
#define NET_ACME_NAMES_MAX 100

/* An ECDSA P-256 key: the ACME account's, or a certificate's. */
struct net_acme_key;
/* Reads the PEM key at path; when it does not exist and is_create, makes
 * one and writes it there (mode 0600). Returns NULL with err set. */
struct net_acme_key *net_acme_key_load(const char *path, bool is_create,
    char *err, size_t errlen);
/* A new key, in memory only. */
struct net_acme_key *net_acme_key_new(void);
/* Writes k to path (mode 0600, through a temporary file and a rename). */
int net_acme_key_save(const struct net_acme_key *k, const char *path,
    char *err, size_t errlen);
void net_acme_key_free(struct net_acme_key **k);
/* The public JWK of k as RFC 7638 §3 orders it (the thumbprint's input);
 * caller frees. */
char *net_acme_key_jwk(const struct net_acme_key *k);
/* base64url (no padding) of SHA-256 of data; caller frees. */
char *net_acme_sha256_b64(const void *data, size_t len);
/* base64url of the ES256 signature (R || S, RFC 7518 §3.4) of data. */
char *net_acme_key_sign(const struct net_acme_key *k, const void *data,
    size_t len);
/* base64url DER of a CSR for names (names[0] also the subject's CN),
 * signed with k. Returns NULL with err set. */
char *net_acme_csr(const struct net_acme_key *k, const char *const *names,
    size_t nnames, char *err, size_t errlen);
/* Reads the first certificate of the PEM text: its validity, and whether
 * it covers every one of names. Returns 0 (covers them), 1 (misses one)
 * or -1 (no certificate). */
int net_acme_cert_info(const char *pem, size_t len, int64_t *not_before_out,
    int64_t *not_after_out, const char *const *names, size_t nnames);
/* Whether the chain the CA sent may be served with k: its first
 * certificate holds k's public key and names nothing (no DNS name, no
 * address) but some of names. Returns 0, or -1 with err set. */
int net_acme_cert_check(const char *pem, size_t len,
    const struct net_acme_key *k, const char *const *names, size_t nnames,
    char *err, size_t errlen);
/* Serves the chain at cert_path with the key at key_path on every TLS
 * listener from the next handshake on (the default certificate, and the
 * one for every name it covers); handshakes under way keep the old one.
 * Returns 0, or -1 with err set and the old certificate still served. */
int net_acme_cert_install(const char *cert_path, const char *key_path,
    char *err, size_t errlen);
/* HTTP-01 (RFC 8555 §8.3): the key authorization to serve at
 * /.well-known/acme-challenge/token. Returns 0, or -1 with err set when
 * NET_ACME_NAMES_MAX challenges are pending already. */
int net_acme_http01_set(const char *token, const char *keyauth, char *err,
    size_t errlen);
/* The key authorization for token (caller frees), or NULL. */
char *net_acme_http01_get(const char *token);
/* TLS-ALPN-01 (RFC 8737): a handshake for name offering "acme-tls/1" is
 * answered with a certificate for keyauth. Returns 0, or -1 with err. */
int net_acme_tlsalpn01_set(const char *name, const char *keyauth,
    char *err, size_t errlen);
/* Forgets every pending challenge. */
void net_acme_challenges_clear(void);

/* Certificates as `postern doctor` judges them (tls_inspect.c). */
struct net_cert_report {
	bool is_chain_ok;	/* chains to a root of the system */
	bool is_self_signed;
	bool is_not_yet_valid;
	int verify_error;	/* OpenSSL's X509_V_ERR_*, 0 when ok */
	char verify_text[128];	/* "ok" or why the chain fails */
	long days_left;		/* until notAfter; negative: expired */
	uint32_t names_missing;	/* bit i: names[i] not covered */
	char names[512];	/* the names it covers, for messages */
};
/* Judges the first certificate of the PEM file path, with the rest of the
 * file as its chain, for names (at most 32). Returns 0, or -1 with err
 * set when the file cannot be read. */
int net_cert_file_check(const char *path, const char *const *names,
    size_t nnames, struct net_cert_report *out, char *err, size_t errlen);

/* Blocking TLS as a client over the connected socket fd (the caller's; set
 * its timeouts first): the handshake, sending host as SNI (may be NULL),
 * whatever the certificate. Returns NULL with err set on failure. */
struct net_tls_sock;
struct net_tls_sock *net_tls_sock_new(int fd, const char *host, char *err,
    size_t errlen);
/* Like read(2) and write(2): bytes, 0 at the end, -1 on error. */
ssize_t net_tls_sock_read(struct net_tls_sock *s, void *buf, size_t len);
ssize_t net_tls_sock_write(struct net_tls_sock *s, const void *buf,
    size_t len);
const char *net_tls_sock_version(const struct net_tls_sock *s);
/* Judges the certificate the peer sent, as net_cert_file_check(), also
 * trusting the roots of the PEM file ca_file when it is not NULL (a
 * private CA). Returns 0, or -1 when it sent none. */
int net_tls_sock_cert(struct net_tls_sock *s, const char *const *names,
    size_t nnames, const char *ca_file, struct net_cert_report *out);
/* Sends close_notify and frees; the socket stays the caller's. */
void net_tls_sock_free(struct net_tls_sock **s);

#endif
