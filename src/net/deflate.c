/*
 * deflate: the two raw DEFLATE streams of a compressed connection (IMAP
 * COMPRESS=DEFLATE, RFC 4978): what we send is compressed into the
 * connection's output, what the client sends is inflated into its input
 * buffer. Called only by conn.c, on the connection's worker.
 *
 * Memory is what a compressed idle session costs, so the two halves are
 * sized apart. Inflating must keep the 32 KiB window the client's
 * compressor may refer back to (RFC 1951 §2: the window is part of the
 * stream). The deflate state of our side (~100 KiB) lives only while a
 * burst of replies is written: after each sync flush we keep the last
 * 8 KiB we sent and free the rest. Raw DEFLATE has no header and a sync
 * flush ends on a byte boundary with BFINAL=0, so the blocks of the next
 * compressor simply continue the stream the client reads; primed with
 * those 8 KiB as its dictionary, it may refer back into bytes the client
 * already holds in its own window (at least 32 KiB), so small replies
 * still compress as well as on one long-lived compressor.
 */
#include "net/net_int.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <zlib.h>

#include "lib/log.h"
#include "lib/util.h"

/* RFC 4978 §4: raw DEFLATE, no zlib header or checksum. Our side may use a
 * smaller window than the client's, which must get 2^15 (the most a
 * compressor may use). Measured on a recorded IMAP session (SELECT, a
 * FETCH of 300 envelopes, 60 bodies, flag changes; DESIGN.md): zlib's
 * defaults on one long-lived compressor 8.5x; a 2^13 window, memLevel 7
 * and a fresh compressor per burst primed with the last 8 KiB 8.3x; the
 * same without the priming 4.6x. */
#define INFLATE_WINDOW_BITS 15
#define DEFLATE_WINDOW_BITS 13
#define DEFLATE_MEM_LEVEL 7
#define DEFLATE_LEVEL 6
#define DEFLATE_DICT_MAX (1u << DEFLATE_WINDOW_BITS)

struct net_deflate {
	z_stream in;		/* the client's commands */
	z_stream out;		/* our replies; valid when is_out_open */
	bool is_out_open;
	bool is_out_dirty;	/* bytes given since the last flush */
	bool has_in_pending;	/* inflate stopped with output to give */
	bool is_in_ended;	/* the client ended its stream */
	uInt dict_len;		/* the last bytes we sent, for the next */
	unsigned char dict[DEFLATE_DICT_MAX];
	uint64_t raw_out, packed_out, packed_in, raw_in;
};

struct net_deflate *
net_deflate_new(void)
{
	struct net_deflate *z = xcalloc(1, sizeof(*z));

	if (inflateInit2(&z->in, -INFLATE_WINDOW_BITS) != Z_OK)
		panic("inflateInit2 failed");
	return z;
}

void
net_deflate_free(struct net_deflate **zp)
{
	struct net_deflate *z = *zp;

	if (z == NULL)
		return;
	inflateEnd(&z->in);
	if (z->is_out_open)
		deflateEnd(&z->out);
	free(z);
	*zp = NULL;
}

/* Runs deflate over what out holds with flush mode, appending to dst. */
static void
deflate_into(struct net_deflate *z, struct evbuffer *dst, int flush)
{
	do {
		struct evbuffer_iovec v;

		if (evbuffer_reserve_space(dst, 16384, &v, 1) < 1)
			panic("evbuffer_reserve_space failed");
		z->out.next_out = v.iov_base;
		z->out.avail_out = (uInt)v.iov_len;
		if (deflate(&z->out, flush) == Z_STREAM_ERROR)
			panic("deflate: stream error");
		v.iov_len -= z->out.avail_out;
		z->packed_out += v.iov_len;
		evbuffer_commit_space(dst, &v, 1);
		/* avail_out == 0: deflate may have more to give. */
	} while (z->out.avail_out == 0 || z->out.avail_in > 0);
}

void
net_deflate_write(struct net_deflate *z, struct evbuffer *dst,
    const void *data, size_t len)
{
	if (!z->is_out_open) {
		memset(&z->out, 0, sizeof(z->out));
		if (deflateInit2(&z->out, DEFLATE_LEVEL, Z_DEFLATED,
		    -DEFLATE_WINDOW_BITS, DEFLATE_MEM_LEVEL,
		    Z_DEFAULT_STRATEGY) != Z_OK)
			panic("deflateInit2 failed");
		if (z->dict_len > 0 && deflateSetDictionary(&z->out, z->dict,
		    z->dict_len) != Z_OK)
			panic("deflateSetDictionary failed");
		z->is_out_open = true;
	}
	z->raw_out += len;
	while (len > 0) {
		/* avail_in is a uInt: feed at most 1 GiB at a time. */
		size_t n = len < (1u << 30) ? len : (1u << 30);

		z->out.next_in = (Bytef *)(uintptr_t)data;
		z->out.avail_in = (uInt)n;
		deflate_into(z, dst, Z_NO_FLUSH);
		data = (const char *)data + n;
		len -= n;
	}
	z->is_out_dirty = true;
}

bool
is_net_deflate_dirty(const struct net_deflate *z)
{
	return z->is_out_dirty;
}

void
net_deflate_flush(struct net_deflate *z, struct evbuffer *dst)
{
	if (!z->is_out_dirty)
		return;
	z->out.next_in = NULL;
	z->out.avail_in = 0;
	/* RFC 4978 §4: a sync flush after each burst, so the client can
	 * read every reply without waiting for more. */
	deflate_into(z, dst, Z_SYNC_FLUSH);
	z->is_out_dirty = false;
	/* The window holds at most 2^DEFLATE_WINDOW_BITS bytes. */
	z->dict_len = DEFLATE_DICT_MAX;
	if (deflateGetDictionary(&z->out, z->dict, &z->dict_len) != Z_OK)
		panic("deflateGetDictionary failed");
	deflateEnd(&z->out);
	z->is_out_open = false;
}

ssize_t
net_deflate_read(struct net_deflate *z, struct evbuffer *src, void *dst,
    size_t room)
{
	size_t given = 0;

	/* Until something comes out or src is used up: blocks that give
	 * nothing (empty flush markers) must not leave bytes in src that no
	 * later read event would ever look at. */
	do {
		size_t avail = evbuffer_get_length(src);
		unsigned char *in = NULL;
		size_t used;
		int rc;

		if (z->is_in_ended)
			return avail > 0 ? -1 : (ssize_t)given;
		if (avail > 16384)
			avail = 16384;
		if (avail > 0)
			in = evbuffer_pullup(src, (ev_ssize_t)avail);
		z->in.next_in = in;
		z->in.avail_in = (uInt)avail;
		z->in.next_out = dst;
		z->in.avail_out = (uInt)room;
		rc = inflate(&z->in, Z_SYNC_FLUSH);
		if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
			return -1;
		used = avail - z->in.avail_in;
		given = room - z->in.avail_out;
		evbuffer_drain(src, used);
		z->packed_in += used;
		z->raw_in += given;
		/* A full output may leave inflated bytes inside zlib. */
		z->has_in_pending = z->in.avail_out == 0;
		if (rc == Z_STREAM_END)
			z->is_in_ended = true;
		if (used == 0)
			break;
	} while (given == 0 && evbuffer_get_length(src) > 0);
	return (ssize_t)given;
}

bool
has_net_deflate_pending(const struct net_deflate *z)
{
	return z->has_in_pending;
}

void
net_deflate_stats(const struct net_deflate *z, uint64_t *raw_out,
    uint64_t *packed_out, uint64_t *raw_in, uint64_t *packed_in)
{
	*raw_out = z->raw_out;
	*packed_out = z->packed_out;
	*raw_in = z->raw_in;
	*packed_in = z->packed_in;
}
