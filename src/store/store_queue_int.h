/*
 * store_queue_int: what store_queue.c (argument checks, requests) and the
 * backends' queue code share: the one request kind, STORE_REQ_QUEUE, that
 * carries every change to the outbound queue through the writer.
 */
#ifndef POSTERN_STORE_QUEUE_INT_H
#define POSTERN_STORE_QUEUE_INT_H

#include "store/store_int.h"

enum store_queue_op_kind {
	STORE_QUEUE_OP_CLAIM,		/* now, lease, max; fills list */
	STORE_QUEUE_OP_UNLEASE_ALL,
	STORE_QUEUE_OP_FINISH,		/* id, outcome, reply,
					 * next_attempt; fills entry when
					 * want_entry */
	STORE_QUEUE_OP_WARNED,		/* id */
	STORE_QUEUE_OP_ACT,		/* id (0: all), action, now */
};

struct store_queue_op {
	enum store_queue_op_kind kind;
	int64_t id;
	int64_t now;
	int64_t lease;
	size_t max;
	enum store_queue_outcome outcome;
	enum store_queue_action action;
	const char *reply;		/* borrowed */
	int64_t next_attempt;
	bool want_entry;

	/* Results; the caller frees them. */
	struct store_queue_entry *list;
	size_t n;
	struct store_queue_entry entry;
	size_t changed;
};

/* The domain of an address, lowercased: what follows its last '@'. */
char *store_queue_domain(const char *rcpt);

#endif
