/*
 * workpool: a few threads for work too slow for an event loop (password
 * hashing). A job runs on a pool thread; its completion runs on the event
 * loop that submitted it. Thread-safe.
 */
#ifndef POSTERN_WORKPOOL_H
#define POSTERN_WORKPOOL_H

#include <stddef.h>

struct event_base;
struct workpool;

/* Starts nthreads threads. */
struct workpool *workpool_new(unsigned nthreads);
/* Finishes queued jobs, then stops the threads. */
void workpool_free(struct workpool **pool);

/* Runs work(arg) on a pool thread, then done(arg) on base's thread (or on
 * the pool thread when base is NULL). Always returns 0 and calls done
 * exactly once, never before it returns. */
int workpool_submit(struct workpool *pool, void (*work)(void *arg),
    struct event_base *base, void (*done)(void *arg), void *arg);

#endif
