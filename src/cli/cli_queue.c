/*
 * cli_queue: `postern queue list|show|retry|delete|hold|release`: what the
 * outbound queue holds and why (attempts so far, the remote server's last
 * reply, the next attempt), and the administrator's levers on it. A
 * running server's runner sees the changes at its next look at the queue
 * (a few seconds at most).
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "lib/util.h"
#include "store/store.h"

static const char usage[] = "postern queue list | show ID | "
    "retry ID|--all | delete ID | hold ID | release ID  [-c FILE] [--json]";

/* Set when "--all" was among the arguments (taken out before the shared
 * option parser sees them). */
static bool is_all;

static const char *
state_name(enum store_queue_state state)
{
	return state == STORE_QUEUE_HELD ? "held" : "queued";
}

/* "2026-11-23T12:00:00Z" into buf. */
static const char *
time_text(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL) {
		snprintf(buf, len, "-");
		return buf;
	}
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static json_t *
entry_json(const struct store_queue_entry *e)
{
	char created[32], next[32];

	return json_pack("{s:I,s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s?,s:s?,"
	    "s:s?,s:b,s:b,s:b,s:b}",
	    "id", (json_int_t)e->id,
	    "state", state_name(e->state),
	    "sender", e->sender,
	    "rcpt", e->rcpt,
	    "domain", e->domain,
	    "attempts", (json_int_t)e->attempts,
	    "size", (json_int_t)e->size,
	    "created", time_text(e->created, created, sizeof(created)),
	    "next_attempt", time_text(e->next_attempt, next, sizeof(next)),
	    "last_reply", e->last_reply,
	    "dsn_envelope", e->dsn_envelope,
	    "dsn_rcpt", e->dsn_rcpt,
	    "in_delivery", e->lease_until > (int64_t)time(NULL),
	    "warned", e->is_warned,
	    "authenticated", e->is_authenticated,
	    "report", e->is_report);
}

static void
json_print(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(j);
}

static int
queue_list(struct cli_admin *ad)
{
	struct store_queue_entry *list;
	enum store_err err;
	size_t n;

	if (store_queue_list(ad->store, &list, &n, &err) < 0)
		return cli_fail("cannot read the queue: %s",
		    store_err_text(err));
	if (ad->is_json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, entry_json(&list[i]));
		json_print(arr);
	} else if (n == 0) {
		printf("the queue is empty\n");
	} else {
		for (size_t i = 0; i < n; i++) {
			const struct store_queue_entry *e = &list[i];
			char next[32];

			printf("%" PRId64 " %s from=<%s> to=<%s> attempts=%u "
			    "next=%s%s%s\n", e->id, state_name(e->state),
			    e->sender, e->rcpt, e->attempts,
			    time_text(e->next_attempt, next, sizeof(next)),
			    e->is_report ? " (success report)" : "",
			    e->lease_until > (int64_t)time(NULL) ?
			    " (being delivered)" : "");
			if (e->last_reply != NULL)
				printf("    last reply: %s\n", e->last_reply);
		}
	}
	store_queue_list_free(&list, n);
	return CLI_EXIT_OK;
}

/* Parses a queue id; prints usage and returns 0 when it is not one. */
static int64_t
id_parse(const char *s)
{
	char *end;
	long long v;

	if (s[0] < '0' || s[0] > '9')
		return 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || v <= 0)
		return 0;
	return (int64_t)v;
}

static int
queue_show(struct cli_admin *ad, int64_t id)
{
	struct store_queue_entry e;
	enum store_err err;
	char created[32], next[32];

	if (store_queue_get(ad->store, id, &e, &err) < 0)
		return cli_fail("cannot show queue entry %" PRId64 ": %s", id,
		    err == STORE_NOT_FOUND ? "no such entry" :
		    store_err_text(err));
	if (ad->is_json) {
		json_print(entry_json(&e));
	} else {
		printf("id: %" PRId64 "\n"
		    "state: %s%s\n"
		    "from: <%s>\n"
		    "to: <%s>\n"
		    "size: %" PRIu64 "\n"
		    "created: %s\n"
		    "attempts: %u\n"
		    "next attempt: %s\n"
		    "last reply: %s\n",
		    e.id, state_name(e.state),
		    e.lease_until > (int64_t)time(NULL) ?
		    " (being delivered)" : "",
		    e.sender, e.rcpt, e.size,
		    time_text(e.created, created, sizeof(created)),
		    e.attempts, time_text(e.next_attempt, next, sizeof(next)),
		    e.last_reply != NULL ? e.last_reply : "-");
		if (e.dsn_envelope != NULL)
			printf("dsn: %s\n", e.dsn_envelope);
		if (e.dsn_rcpt != NULL)
			printf("dsn recipient: %s\n", e.dsn_rcpt);
	}
	store_queue_entry_deinit(&e);
	return CLI_EXIT_OK;
}

static int
queue_act(struct cli_admin *ad, int64_t id, enum store_queue_action action,
    const char *done)
{
	enum store_err err;
	size_t n;

	if (store_queue_act(ad->store, id, action, (int64_t)time(NULL), &n,
	    &err) < 0) {
		if (id == 0)
			return cli_fail("cannot change the queue: %s",
			    store_err_text(err));
		return cli_fail("cannot change queue entry %" PRId64 ": %s",
		    id, err == STORE_NOT_FOUND ? "no such entry" :
		    store_err_text(err));
	}
	if (ad->is_json)
		json_print(json_pack("{s:s,s:I}", "result", done, "entries",
		    (json_int_t)n));
	else if (id != 0)
		printf("queue entry %" PRId64 " %s\n", id, done);
	else
		printf("%zu queue entr%s %s\n", n, n == 1 ? "y" : "ies", done);
	return CLI_EXIT_OK;
}

static int
queue_run(struct cli_admin *ad, const char *verb)
{
	static const struct {
		const char *verb;
		enum store_queue_action action;
		const char *done;
	} acts[] = {
		{ "retry", STORE_QUEUE_RETRY, "scheduled for delivery now" },
		{ "delete", STORE_QUEUE_DELETE, "deleted" },
		{ "hold", STORE_QUEUE_HOLD, "held" },
		{ "release", STORE_QUEUE_RELEASE, "released" },
	};
	int64_t id;

	if (strcmp(verb, "list") == 0 && ad->argc == 0 && !is_all)
		return queue_list(ad);
	if (strcmp(verb, "show") == 0 && ad->argc == 1 && !is_all &&
	    (id = id_parse(ad->argv[0])) > 0)
		return queue_show(ad, id);
	for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
		if (strcmp(verb, acts[i].verb) != 0)
			continue;
		/* Only retry takes --all: deleting everything by a slip of
		 * the fingers is not offered. */
		if (is_all && ad->argc == 0 &&
		    acts[i].action == STORE_QUEUE_RETRY)
			return queue_act(ad, 0, acts[i].action, acts[i].done);
		if (!is_all && ad->argc == 1 &&
		    (id = id_parse(ad->argv[0])) > 0)
			return queue_act(ad, id, acts[i].action,
			    acts[i].done);
	}
	fprintf(stderr, "usage: %s\n", usage);
	return CLI_EXIT_USAGE;
}

int
cli_queue(int argc, char **argv)
{
	char **args = xcalloc((size_t)argc + 1, sizeof(*args));
	int n = 0, rc;

	is_all = false;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				args[n++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "--all") == 0)
			is_all = true;
		else
			args[n++] = argv[i];
	}
	rc = cli_admin_main(n, args, usage, queue_run);
	free(args);
	return rc;
}
