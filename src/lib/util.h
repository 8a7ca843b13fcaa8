/*
 * util: the few helpers every layer uses: allocation that never returns NULL,
 * panic() for our own impossible states, secret wiping and constant-time
 * comparison. Thread-safe; no state.
 */
#ifndef POSTERN_UTIL_H
#define POSTERN_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation stops the process on out-of-memory; callers never check. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a newly allocated printf-formatted string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports an impossible state of our own and aborts. */
void panic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* Clears a secret so that the compiler cannot drop the write. */
void secret_wipe(void *p, size_t n);

/* Compares two byte strings in time that depends only on the lengths. */
bool is_equal_const_time(const void *a, size_t alen, const void *b,
    size_t blen);

/* Case-insensitive ASCII comparison of a prefix: true if s starts with
 * prefix. */
bool has_prefix_ci(const char *s, const char *prefix);

#endif
