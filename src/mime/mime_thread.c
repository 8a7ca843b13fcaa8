#include "mime/mime_int.h"

#include <glib.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

/*
 * The threading algorithms of RFC 5256 §3: ORDEREDSUBJECT and REFERENCES
 * (the latter after Jamie Zawinski's), over what the caller knows of each
 * message. Pure: no I/O, any thread. Everything is iterative, so a chain
 * of a hundred thousand replies does not run out of stack.
 */

#define NONE SIZE_MAX

/* One container of §3 REFERENCES step 1: a message, or a dummy that only
 * a reference names. */
struct cont {
	size_t msg;		/* index into msgs, or NONE for a dummy */
	size_t parent, child, next;
};

struct tb {
	const struct mime_thread_msg *msgs;
	size_t nmsgs;
	struct cont *c;
	size_t n, cap;
	GHashTable *ids;	/* message id -> container index + 1 */
	size_t walk_budget;	/* steps is_under() may still take */
};

/* The loop check walks up from the new parent. Real mail almost never
 * needs it (a child without children cannot be an ancestor), but crafted
 * References can make every link walk a long chain: the walks of one
 * threading are bounded by WALK_PER_MSG steps a message, after which a
 * link that needs a walk is refused as if it made a loop. */
#define WALK_PER_MSG 64
#define WALK_MIN 100000
/* References a message contributes: the last ones, nearest its parent. */
#define REFS_MAX 1000

static size_t
cont_new(struct tb *t, size_t msg)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		t->c = xrealloc(t->c, t->cap * sizeof(*t->c));
	}
	t->c[t->n] = (struct cont){ msg, NONE, NONE, NONE };
	return t->n++;
}

/* The container of id, made a dummy when no message had it yet. */
static size_t
cont_of_id(struct tb *t, const char *id)
{
	gpointer v = g_hash_table_lookup(t->ids, id);
	size_t c;

	if (v != NULL)
		return (size_t)GPOINTER_TO_SIZE(v) - 1;
	c = cont_new(t, NONE);
	g_hash_table_insert(t->ids, (gpointer)id, GSIZE_TO_POINTER(c + 1));
	return c;
}

/* Is a in the subtree of b (or b itself)? Also true once the walk
 * budget is spent. */
static bool
is_under(struct tb *t, size_t a, size_t b)
{
	if (t->c[b].child == NONE)
		return a == b;
	for (; a != NONE; a = t->c[a].parent) {
		if (a == b || t->walk_budget == 0)
			return true;
		t->walk_budget--;
	}
	return false;
}

static void
link_child(struct tb *t, size_t parent, size_t child)
{
	t->c[child].parent = parent;
	t->c[child].next = t->c[parent].child;
	t->c[parent].child = child;
}

static void
unlink_child(struct tb *t, size_t child)
{
	size_t p = t->c[child].parent, *at;

	if (p == NONE)
		return;
	for (at = &t->c[p].child; *at != child; at = &t->c[*at].next)
		;
	*at = t->c[child].next;
	t->c[child].parent = NONE;
	t->c[child].next = NONE;
}

/* The message whose date and number stand for container c in sorting:
 * its own, or a dummy's first child's (RFC 5256 §3 steps 5 and 7). */
static size_t
rep_msg(const struct tb *t, size_t c)
{
	while (c != NONE && t->c[c].msg == NONE)
		c = t->c[c].child;
	return c == NONE ? NONE : t->c[c].msg;
}

/* §2.2: by sent date, then by the order in the mailbox. */
static int
msg_cmp(const struct tb *t, size_t a, size_t b)
{
	if (a == NONE || b == NONE)
		return (a == NONE) - (b == NONE);
	if (t->msgs[a].sent != t->msgs[b].sent)
		return t->msgs[a].sent < t->msgs[b].sent ? -1 : 1;
	return a < b ? -1 : a > b;
}

/* qsort_r(): workers on several threads sort at once. */
static int
cont_cmp(const void *a, const void *b, void *arg)
{
	const struct tb *t = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return msg_cmp(t, rep_msg(t, x), rep_msg(t, y));
}

/* Sorts the list starting at *head (linked by next) in place. */
static void
list_sort(struct tb *t, size_t *head, size_t **tmp, size_t *tmpcap)
{
	size_t k = 0;

	for (size_t c = *head; c != NONE; c = t->c[c].next) {
		if (k == *tmpcap) {
			*tmpcap = *tmpcap ? 2 * *tmpcap : 64;
			*tmp = xrealloc(*tmp, *tmpcap * sizeof(**tmp));
		}
		(*tmp)[k++] = c;
	}
	if (k < 2)
		return;
	qsort_r(*tmp, k, sizeof(**tmp), cont_cmp, t);
	*head = (*tmp)[0];
	for (size_t i = 0; i + 1 < k; i++)
		t->c[(*tmp)[i]].next = (*tmp)[i + 1];
	t->c[(*tmp)[k - 1]].next = NONE;
}

/* Containers of the trees under the list at head, each before its
 * descendants (pre-order), into *order_out. */
static size_t
preorder(const struct tb *t, size_t head, size_t *order)
{
	size_t *stack = xmalloc((t->n + 1) * sizeof(*stack)), sp = 0, k = 0;

	for (size_t c = head; c != NONE; c = t->c[c].next)
		stack[sp++] = c;
	while (sp > 0) {
		size_t c = stack[--sp];

		order[k++] = c;
		for (size_t ch = t->c[c].child; ch != NONE; ch = t->c[ch].next)
			stack[sp++] = ch;
	}
	free(stack);
	return k;
}

/* §3 step 7 (and 5): every list of siblings by sent date, the deepest
 * first so that a dummy can be sorted by its first child. */
static void
sort_all(struct tb *t, size_t *root)
{
	size_t *order = xmalloc((t->n + 1) * sizeof(*order));
	size_t k = preorder(t, *root, order), *tmp = NULL, tmpcap = 0;

	for (size_t i = k; i-- > 0;)
		list_sort(t, &t->c[order[i]].child, &tmp, &tmpcap);
	list_sort(t, root, &tmp, &tmpcap);
	free(tmp);
	free(order);
}

/* Splits a space-separated id list into *ids (pointers into s). */
static size_t
ids_split(char *s, const char ***ids, size_t *cap)
{
	size_t k = 0;
	char *save = NULL;

	for (char *w = strtok_r(s, " \t", &save); w != NULL;
	    w = strtok_r(NULL, " \t", &save)) {
		if (k == *cap) {
			*cap = *cap ? 2 * *cap : 16;
			*ids = xrealloc(*ids, *cap * sizeof(**ids));
		}
		(*ids)[k++] = w;
	}
	return k;
}

/* §3 REFERENCES step 1: the containers and their links. */
static void
link_all(struct tb *t, char **copies)
{
	const char **ids = NULL;
	size_t cap = 0;

	for (size_t i = 0; i < t->nmsgs; i++) {
		const struct mime_thread_msg *m = &t->msgs[i];
		size_t self = NONE, k = 0, prev = NONE;

		/* A message id seen before makes this message unique
		 * (§3 step 1: duplicates get ids of their own). */
		if (m->message_id != NULL && m->message_id[0] != '\0') {
			gpointer v = g_hash_table_lookup(t->ids,
			    m->message_id);

			if (v == NULL) {
				self = cont_of_id(t, m->message_id);
				t->c[self].msg = i;
			} else if (t->c[(size_t)GPOINTER_TO_SIZE(v) - 1].msg ==
			    NONE) {
				self = (size_t)GPOINTER_TO_SIZE(v) - 1;
				t->c[self].msg = i;
			}
		}
		if (self == NONE)
			self = cont_new(t, i);
		/* §3 step 1.A: References, or else the first id of
		 * In-Reply-To. */
		if (m->references != NULL) {
			copies[2 * i] = xstrdup(m->references);
			k = ids_split(copies[2 * i], &ids, &cap);
			if (k > REFS_MAX) {
				memmove(ids, ids + (k - REFS_MAX), REFS_MAX *
				    sizeof(*ids));
				k = REFS_MAX;
			}
		}
		if (k == 0 && m->in_reply_to != NULL) {
			copies[2 * i + 1] = xstrdup(m->in_reply_to);
			k = ids_split(copies[2 * i + 1], &ids, &cap);
			k = k > 0 ? 1 : 0;
		}
		/* §3 step 1.B: each reference the parent of the next,
		 * unless the child has a parent or it would make a loop. */
		for (size_t j = 0; j < k; j++) {
			size_t c = cont_of_id(t, ids[j]);

			if (prev != NONE && c != prev &&
			    t->c[c].parent == NONE && !is_under(t, prev, c))
				link_child(t, prev, c);
			prev = c;
		}
		/* §3 step 1.C: the last reference is the parent, replacing
		 * any parent a truncated References gave it. */
		unlink_child(t, self);
		if (prev != NONE && prev != self && !is_under(t, prev, self))
			link_child(t, prev, self);
	}
	free(ids);
}

/* §3 step 4: dummies without children go; below the root, a dummy's
 * children take its place; at the root only a single child does. */
static void
prune(struct tb *t, size_t *root)
{
	size_t *order = xmalloc((t->n + 1) * sizeof(*order));
	size_t k = preorder(t, *root, order);

	/* Children before parents, the root last: a list is pruned after
	 * every list below it, so the children a dummy passes up are
	 * final. */
	for (size_t step = 0; step <= k; step++) {
		bool is_root = step == k;
		size_t parent = is_root ? NONE : order[k - 1 - step];
		size_t *head = is_root ? root : &t->c[parent].child;
		size_t *at = head;

		while (*at != NONE) {
			size_t c = *at, kids = 0;

			if (t->c[c].msg != NONE) {
				at = &t->c[c].next;
				continue;
			}
			for (size_t ch = t->c[c].child; ch != NONE;
			    ch = t->c[ch].next)
				kids++;
			if (kids == 0) {
				*at = t->c[c].next;
				continue;
			}
			if (is_root && kids > 1) {
				at = &t->c[c].next;
				continue;
			}
			/* Splice the children in where the dummy was. */
			size_t last = t->c[c].child;

			for (size_t ch = t->c[c].child; ch != NONE;
			    ch = t->c[ch].next) {
				t->c[ch].parent = parent;
				last = ch;
			}
			t->c[last].next = t->c[c].next;
			*at = t->c[c].child;
			t->c[c].child = NONE;
		}
	}
	free(order);
}

struct subj {
	char *key;		/* collation key of the base subject */
	bool is_reply;
};

/* The base subject of container c (a dummy's: its first child's), or
 * NULL when empty. */
static const struct subj *
subj_of(const struct tb *t, const struct subj *subjs, size_t c)
{
	size_t m = t->c[c].msg;

	if (m == NONE && t->c[c].child != NONE)
		m = t->c[t->c[c].child].msg;
	if (m == NONE || subjs[m].key[0] == '\0')
		return NULL;
	return &subjs[m];
}

static void
subjects_make(const struct tb *t, struct subj *subjs)
{
	for (size_t i = 0; i < t->nmsgs; i++) {
		char *base = mime_subject_base(t->msgs[i].subject,
		    &subjs[i].is_reply);

		subjs[i].key = mime_collate_key(base);
		free(base);
	}
}

static void
subjects_free(const struct tb *t, struct subj *subjs)
{
	for (size_t i = 0; i < t->nmsgs; i++)
		free(subjs[i].key);
	free(subjs);
}

/* Appends the children of dummy `from` to those of `to`. */
static void
adopt_children(struct tb *t, size_t to, size_t from)
{
	while (t->c[from].child != NONE) {
		size_t ch = t->c[from].child;

		unlink_child(t, ch);
		link_child(t, to, ch);
	}
}

/* §3 step 6: top-level threads with the same base subject are merged. */
static void
merge_subjects(struct tb *t, size_t *root, const struct subj *subjs)
{
	GHashTable *tab = g_hash_table_new(g_str_hash, g_str_equal);
	size_t nroots = 0, *roots;

	for (size_t c = *root; c != NONE; c = t->c[c].next)
		nroots++;
	roots = xmalloc((nroots + 1) * sizeof(*roots));
	nroots = 0;
	for (size_t c = *root; c != NONE; c = t->c[c].next)
		roots[nroots++] = c;
	/* Steps 6.B and 6.C: which container stands for each subject. */
	for (size_t i = 0; i < nroots; i++) {
		size_t c = roots[i], o;
		const struct subj *s = subj_of(t, subjs, c);
		gpointer v;

		if (s == NULL)
			continue;
		v = g_hash_table_lookup(tab, s->key);
		if (v != NULL) {
			o = (size_t)GPOINTER_TO_SIZE(v) - 1;
			bool is_dummy = t->c[c].msg == NONE;
			bool is_o_dummy = t->c[o].msg == NONE;

			if (!((is_dummy && !is_o_dummy) ||
			    (!is_dummy && !is_o_dummy &&
			    subjs[t->c[o].msg].is_reply && !s->is_reply)))
				continue;
		}
		g_hash_table_insert(tab, s->key, GSIZE_TO_POINTER(c + 1));
	}
	/* Step 6.D: merge the others into it. roots[i] becomes NONE once
	 * it is no longer at the top. */
	for (size_t i = 0; i < nroots; i++) {
		size_t c = roots[i], o;
		const struct subj *s = subj_of(t, subjs, c);
		gpointer v;

		if (s == NULL || (v = g_hash_table_lookup(tab, s->key)) ==
		    NULL)
			continue;
		o = (size_t)GPOINTER_TO_SIZE(v) - 1;
		if (o == c)
			continue;
		bool is_dummy = t->c[c].msg == NONE;
		bool is_o_dummy = t->c[o].msg == NONE;

		if (is_dummy && is_o_dummy) {
			adopt_children(t, o, c);
			roots[i] = NONE;
		} else if (is_o_dummy) {
			link_child(t, o, c);
			roots[i] = NONE;
		} else if (is_dummy) {
			/* The table prefers dummies, so this does not
			 * happen; kept for safety: o goes under c. */
			for (size_t j = 0; j < nroots; j++) {
				if (roots[j] == o)
					roots[j] = NONE;
			}
			link_child(t, c, o);
			g_hash_table_insert(tab, s->key,
			    GSIZE_TO_POINTER(c + 1));
		} else if (!subjs[t->c[o].msg].is_reply && s->is_reply) {
			link_child(t, o, c);
			roots[i] = NONE;
		} else {
			size_t d = cont_new(t, NONE);

			for (size_t j = 0; j < nroots; j++) {
				if (roots[j] == o)
					roots[j] = d;
			}
			roots[i] = NONE;
			link_child(t, d, o);
			link_child(t, d, c);
			g_hash_table_insert(tab, s->key,
			    GSIZE_TO_POINTER(d + 1));
		}
	}
	g_hash_table_destroy(tab);
	*root = NONE;
	for (size_t i = nroots; i-- > 0;) {
		if (roots[i] == NONE)
			continue;
		t->c[roots[i]].parent = NONE;
		t->c[roots[i]].next = *root;
		*root = roots[i];
	}
	free(roots);
}

static void
references(struct tb *t, size_t *root)
{
	char **copies = xcalloc(2 * t->nmsgs + 1, sizeof(*copies));
	struct subj *subjs = xcalloc(t->nmsgs + 1, sizeof(*subjs));

	t->ids = g_hash_table_new(g_str_hash, g_str_equal);
	t->walk_budget = t->nmsgs * WALK_PER_MSG + WALK_MIN;
	link_all(t, copies);
	/* Step 2: the root set. */
	*root = NONE;
	for (size_t c = t->n; c-- > 0;) {
		if (t->c[c].parent == NONE) {
			t->c[c].next = *root;
			*root = c;
		}
	}
	/* Step 3: the id table is not needed any more. */
	g_hash_table_destroy(t->ids);
	t->ids = NULL;
	for (size_t i = 0; i < 2 * t->nmsgs; i++)
		free(copies[i]);
	free(copies);
	prune(t, root);
	sort_all(t, root);
	subjects_make(t, subjs);
	merge_subjects(t, root, subjs);
	sort_all(t, root);
	subjects_free(t, subjs);
}

struct os_arg {
	const struct tb *t;
	const struct subj *subjs;
};

static int
os_cmp(const void *a, const void *b, void *arg)
{
	const struct os_arg *o = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int r = strcmp(o->subjs[x].key, o->subjs[y].key);

	return r != 0 ? r : msg_cmp(o->t, x, y);
}

/* §3 ORDEREDSUBJECT: messages with the same base subject, by sent date,
 * are one thread: the first the parent, the others its children. */
static void
ordered_subject(struct tb *t, size_t *root)
{
	struct subj *subjs = xcalloc(t->nmsgs + 1, sizeof(*subjs));
	size_t *order = xmalloc((t->nmsgs + 1) * sizeof(*order));
	size_t *tmp = NULL, tmpcap = 0;

	subjects_make(t, subjs);
	for (size_t i = 0; i < t->nmsgs; i++) {
		order[i] = i;
		cont_new(t, i);
	}
	struct os_arg arg = { t, subjs };

	qsort_r(order, t->nmsgs, sizeof(*order), os_cmp, &arg);
	*root = NONE;
	for (size_t i = 0; i < t->nmsgs;) {
		size_t j = i + 1, *tail;

		t->c[order[i]].next = *root;
		*root = order[i];
		tail = &t->c[order[i]].child;
		for (; j < t->nmsgs && strcmp(subjs[order[i]].key,
		    subjs[order[j]].key) == 0; j++) {
			t->c[order[j]].parent = order[i];
			*tail = order[j];
			tail = &t->c[order[j]].next;
		}
		i = j;
	}
	list_sort(t, root, &tmp, &tmpcap);
	free(tmp);
	free(order);
	subjects_free(t, subjs);
}

int
mime_thread_build(const struct mime_thread_msg *msgs, size_t n,
    enum mime_thread_algo algo, struct mime_thread *out)
{
	struct tb t = { .msgs = msgs, .nmsgs = n };
	size_t root = NONE;

	memset(out, 0, sizeof(*out));
	if (n > MIME_THREAD_MAX_MSGS)
		return -1;
	if (algo == MIME_THREAD_REFERENCES)
		references(&t, &root);
	else
		ordered_subject(&t, &root);
	out->nodes = xcalloc(t.n + 1, sizeof(*out->nodes));
	for (size_t i = 0; i < t.n; i++) {
		out->nodes[i].msg = t.c[i].msg;
		out->nodes[i].child = t.c[i].child;
		out->nodes[i].next = t.c[i].next;
	}
	out->nnodes = t.n;
	out->first = root;
	free(t.c);
	return 0;
}

void
mime_thread_deinit(struct mime_thread *t)
{
	free(t->nodes);
	memset(t, 0, sizeof(*t));
	t->first = MIME_THREAD_NONE;
}

/* What the writer's stack holds: a node to write, or a parenthesis. */
#define TOK_OPEN (SIZE_MAX - 1)
#define TOK_CLOSE (SIZE_MAX - 2)
#define TOK_SPACE (SIZE_MAX - 3)

char *
mime_thread_format(const struct mime_thread *t, const uint32_t *numbers)
{
	struct mime_str b;
	size_t *stack, sp = 0, cap = 64;

	mime_str_init(&b);
	stack = xmalloc(cap * sizeof(*stack));
	for (size_t r = t->first; r != MIME_THREAD_NONE;
	    r = t->nodes[r].next) {
		/* RFC 5256 §4: thread-list = "(" (thread-members /
		 * thread-nested) ")"; a node with one child goes on in the
		 * same list, with more each child is a list of its own. */
		mime_str_addc(&b, '(');
		stack[sp++] = r;
		while (sp > 0) {
			size_t x = stack[--sp], kids = 0;
			const struct mime_thread_node *nd;

			if (x == TOK_OPEN || x == TOK_CLOSE ||
			    x == TOK_SPACE) {
				mime_str_addc(&b, x == TOK_OPEN ? '(' :
				    x == TOK_CLOSE ? ')' : ' ');
				continue;
			}
			nd = &t->nodes[x];
			if (nd->msg != MIME_THREAD_NONE)
				mime_str_addf(&b, "%" PRIu32,
				    numbers[nd->msg]);
			for (size_t c = nd->child; c != MIME_THREAD_NONE;
			    c = t->nodes[c].next)
				kids++;
			if (kids == 0)
				continue;
			if (sp + 3 * kids + 2 > cap) {
				while (sp + 3 * kids + 2 > cap)
					cap *= 2;
				stack = xrealloc(stack, cap * sizeof(*stack));
			}
			if (kids == 1 && nd->msg != MIME_THREAD_NONE) {
				stack[sp++] = nd->child;
				stack[sp++] = TOK_SPACE;
				continue;
			}
			/* Children pushed in reverse, each "(" c ")". */
			size_t k = 0;

			sp += 3 * kids;

			for (size_t c = nd->child; c != MIME_THREAD_NONE;
			    c = t->nodes[c].next, k++) {
				size_t at = sp - 3 * (k + 1);

				stack[at] = TOK_CLOSE;
				stack[at + 1] = c;
				stack[at + 2] = TOK_OPEN;
			}
			if (nd->msg != MIME_THREAD_NONE)
				stack[sp++] = TOK_SPACE;
		}
		mime_str_addc(&b, ')');
	}
	free(stack);
	return mime_str_take(&b);
}
