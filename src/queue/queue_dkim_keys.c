/*
 * queue_dkim_keys: the DKIM signing keys of our domains, each read from
 * disk once and again only when its key or selector file changes (a new
 * `postern dkim generate`), not once per message. Only the runner's
 * thread uses a cache.
 */
#include "queue/queue_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/util.h"
#include "net/net.h"
#include "queue/queue.h"

/* Domains signed for: past this many, the oldest entry is dropped. */
#define DKIM_KEYS_MAX 1024

/* What identifies a file's version, without reading it. */
struct file_stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	bool exists;
};

struct dkim_key_entry {
	char *domain;
	struct file_stamp key_stamp, sel_stamp;
	struct net_key *key;	/* NULL: no usable key */
	char selector[72];
};

struct queue_dkim_keys {
	char *data_dir;
	struct dkim_key_entry *entries;
	size_t n;
	unsigned loads;		/* keys read from disk, for tests */
};

static struct file_stamp
stamp_of(const char *path)
{
	struct file_stamp s = { 0 };
	struct stat st;

	if (stat(path, &st) == 0) {
		s.dev = st.st_dev;
		s.ino = st.st_ino;
		s.size = st.st_size;
		s.mtime = st.st_mtim;
		s.exists = true;
	}
	return s;
}

static bool
is_same_stamp(const struct file_stamp *a, const struct file_stamp *b)
{
	return a->exists == b->exists && a->dev == b->dev &&
	    a->ino == b->ino && a->size == b->size &&
	    a->mtime.tv_sec == b->mtime.tv_sec &&
	    a->mtime.tv_nsec == b->mtime.tv_nsec;
}

struct queue_dkim_keys *
queue_dkim_keys_new(const char *data_dir)
{
	struct queue_dkim_keys *k = xcalloc(1, sizeof(*k));

	k->data_dir = xstrdup(data_dir);
	return k;
}

static void
entry_deinit(struct dkim_key_entry *e)
{
	free(e->domain);
	net_key_free(&e->key);
}

void
queue_dkim_keys_free(struct queue_dkim_keys **kp)
{
	struct queue_dkim_keys *k = *kp;

	if (k == NULL)
		return;
	*kp = NULL;
	for (size_t i = 0; i < k->n; i++)
		entry_deinit(&k->entries[i]);
	free(k->entries);
	free(k->data_dir);
	free(k);
}

unsigned
queue_dkim_keys_loads(const struct queue_dkim_keys *k)
{
	return k->loads;
}

/* Reads the selector and the key of e's domain. */
static void
entry_load(struct queue_dkim_keys *k, struct dkim_key_entry *e,
    const char *kpath, const char *spath, char *err, size_t errlen)
{
	FILE *f;

	net_key_free(&e->key);
	e->selector[0] = '\0';
	if ((f = fopen(spath, "r")) != NULL) {
		if (fgets(e->selector, sizeof(e->selector), f) == NULL)
			e->selector[0] = '\0';
		e->selector[strcspn(e->selector, "\r\n")] = '\0';
		fclose(f);
	}
	if (e->selector[0] == '\0')
		return;
	k->loads++;
	e->key = net_key_load(kpath, err, errlen);
}

const struct net_key *
queue_dkim_keys_get(struct queue_dkim_keys *k, const char *domain,
    const char **selector_out, char *err, size_t errlen)
{
	char *kpath = queue_dkim_key_path(k->data_dir, domain);
	char *spath = queue_dkim_selector_path(k->data_dir, domain);
	struct file_stamp ks = stamp_of(kpath), ss = stamp_of(spath);
	struct dkim_key_entry *e = NULL;

	err[0] = '\0';
	for (size_t i = 0; i < k->n && e == NULL; i++) {
		if (strcmp(k->entries[i].domain, domain) == 0)
			e = &k->entries[i];
	}
	if (e == NULL) {
		if (k->n == DKIM_KEYS_MAX) {
			entry_deinit(&k->entries[0]);
			memmove(&k->entries[0], &k->entries[1],
			    (k->n - 1) * sizeof(*k->entries));
			k->n--;
		}
		k->entries = xrealloc(k->entries,
		    (k->n + 1) * sizeof(*k->entries));
		e = &k->entries[k->n++];
		memset(e, 0, sizeof(*e));
		e->domain = xstrdup(domain);
		entry_load(k, e, kpath, spath, err, errlen);
	} else if (!is_same_stamp(&e->key_stamp, &ks) ||
	    !is_same_stamp(&e->sel_stamp, &ss)) {
		entry_load(k, e, kpath, spath, err, errlen);
	}
	e->key_stamp = ks;
	e->sel_stamp = ss;
	free(kpath);
	free(spath);
	*selector_out = e->selector;
	return e->key;
}
