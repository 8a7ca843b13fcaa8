/*
 * acme: postern's ACME client (RFC 8555). One thread of its own, off the
 * event loops: it keeps one certificate covering mail., autoconfig.,
 * autodiscover. and mta-sts. of every domain of the store, renews it at
 * 2/3 of its lifetime (with backoff after a failure), and hands each new
 * one to net, which serves it on every TLS listener from the next
 * handshake. Challenges are answered by net (TLS-ALPN-01) and http
 * (HTTP-01). HTTPS through libcurl, JSON through jansson, keys and
 * signatures through net (OpenSSL stays there).
 *
 * Files, in DATA/acme (0700): account.key, cert.key (0600), cert.pem.
 */
#ifndef POSTERN_ACME_H
#define POSTERN_ACME_H

#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "store/store.h"

struct acme;

/* Reads the [acme] settings of cfg (copied: a reload does not change
 * them) and serves the certificate a previous run got, if any. Returns
 * NULL with err set when the data directory's ACME files cannot be made
 * or read. Borrows store until acme_free(). */
struct acme *acme_new(const struct config *cfg, struct store *store,
    char *err, size_t errlen);
/* Starts the thread. Returns 0, or -1 with err set. */
int acme_start(struct acme *a, char *err, size_t errlen);
/* Stops the thread (an order under way is given up) and frees a. */
void acme_free(struct acme **a);

/* The names the certificate covers for the given domains: four per
 * domain, in order. Returns a NULL-terminated array (free each string and
 * the array), *n_out set. */
char **acme_names(char *const *domains, size_t *n_out);

/* The clock of the CA, for `postern doctor`: GETs cfg's [acme] directory
 * (https only, trusting [acme] ca_file too when set; 10 s at most, the body
 * read up to 64 KiB and dropped) and parses its Date header (RFC 9110
 * §6.6.1). Returns 0 with *date set, or -1 with err set. */
int acme_server_date(const struct config *cfg, int64_t *date, char *err,
    size_t errlen);

#endif
