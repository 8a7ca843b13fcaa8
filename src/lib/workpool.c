#include "lib/workpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <event2/event.h>

#include "lib/util.h"

struct job {
	void (*work)(void *arg);
	void (*done)(void *arg);
	void *arg;
	struct event_base *base;
	struct job *next;
};

struct workpool {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct job *head, *tail;
	bool is_stopping;
	pthread_t *threads;
	unsigned nthreads;
};

static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;

	(void)fd;
	(void)what;
	j->done(j->arg);
	free(j);
}

static void *
pool_main(void *arg)
{
	struct workpool *pool = arg;

	for (;;) {
		struct job *j;

		pthread_mutex_lock(&pool->mu);
		while (pool->head == NULL && !pool->is_stopping)
			pthread_cond_wait(&pool->cond, &pool->mu);
		j = pool->head;
		if (j == NULL) {
			pthread_mutex_unlock(&pool->mu);
			return NULL;
		}
		pool->head = j->next;
		if (pool->head == NULL)
			pool->tail = NULL;
		pthread_mutex_unlock(&pool->mu);

		j->work(j->arg);
		if (j->base == NULL) {
			on_done(-1, 0, j);
			continue;
		}
		/* event_base_once is safe from another thread once libevent
		 * runs with evthread_use_pthreads(). */
		if (event_base_once(j->base, -1, EV_TIMEOUT, on_done, j,
		    NULL) < 0)
			panic("workpool: cannot schedule a completion");
	}
}

struct workpool *
workpool_new(unsigned nthreads)
{
	struct workpool *pool = xcalloc(1, sizeof(*pool));

	pthread_mutex_init(&pool->mu, NULL);
	pthread_cond_init(&pool->cond, NULL);
	pool->nthreads = nthreads ? nthreads : 1;
	pool->threads = xcalloc(pool->nthreads, sizeof(*pool->threads));
	for (unsigned i = 0; i < pool->nthreads; i++) {
		if (pthread_create(&pool->threads[i], NULL, pool_main,
		    pool) != 0)
			panic("workpool: cannot start a thread");
	}
	return pool;
}

void
workpool_free(struct workpool **poolp)
{
	struct workpool *pool = *poolp;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->mu);
	pool->is_stopping = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->mu);
	for (unsigned i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->mu);
	free(pool->threads);
	free(pool);
	*poolp = NULL;
}

int
workpool_submit(struct workpool *pool, void (*work)(void *arg),
    struct event_base *base, void (*done)(void *arg), void *arg)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->work = work;
	j->done = done;
	j->arg = arg;
	j->base = base;
	pthread_mutex_lock(&pool->mu);
	if (pool->tail != NULL)
		pool->tail->next = j;
	else
		pool->head = j;
	pool->tail = j;
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->mu);
	return 0;
}
