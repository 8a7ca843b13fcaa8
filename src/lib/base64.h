/*
 * base64: RFC 4648 §4 encoding, as SASL (RFC 4422) and JWT (§5, base64url)
 * use it. Written here because the decoder must be strict (no whitespace,
 * exact padding) and bounded, which the libraries we have are not.
 * Thread-safe; no state.
 */
#ifndef POSTERN_BASE64_H
#define POSTERN_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes needed to encode n bytes, NUL included. */
#define BASE64_ENCODED_SIZE(n) ((((n) + 2) / 3) * 4 + 1)

/* Encodes n bytes into a new NUL-terminated string; is_url selects the
 * URL alphabet without padding (RFC 4648 §5). */
char *base64_encode(const void *data, size_t n, bool is_url);

/* Decodes len characters into a new buffer (NUL-terminated for
 * convenience, *n_out bytes long). Returns NULL when the input is not
 * strict base64 (or base64url without padding when is_url). */
unsigned char *base64_decode(const char *text, size_t len, bool is_url,
    size_t *n_out);

#endif
