/*
 * mime: parses a message once, at delivery or APPEND, into everything IMAP
 * needs later without reading the message again: the ENVELOPE, BODY and
 * BODYSTRUCTURE strings exactly as FETCH sends them, the byte offsets of
 * every part (BODY[1.2], BODY[1.MIME], BODY[HEADER] are slices of the raw
 * message), the decoded header values SORT and THREAD use, and UTF-8 text
 * for the search index.
 *
 * Offsets come from our own bounded scanner over the raw bytes; GMime
 * decodes what needs decoding (RFC 2047 words, charsets, base64 and
 * quoted-printable, dates, address lists, message ids), and RFC 2231
 * parameters are merged and percent-decoded here. Broken MIME never fails
 * a parse: it gets a best-effort structure and is_broken.
 * Every depth, count and size is bounded by the MIME_MAX_* limits below.
 *
 * Thread-safe: any thread may call mime_parse() once mime_init() has run;
 * a struct mime_info belongs to its caller.
 */
#ifndef POSTERN_MIME_H
#define POSTERN_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting of multiparts and message parts below the top-level message. */
#define MIME_MAX_DEPTH 32
/* Parts of one message, embedded messages included. */
#define MIME_MAX_PARTS 4096
/* Decoded text kept for the search index. */
#define MIME_MAX_TEXT (4u << 20)
/* Bytes of one header block that are interpreted; fields starting later
 * are ignored (the block's offsets stay exact). */
#define MIME_MAX_HEADER (256u << 10)
/* Longest boundary accepted (RFC 2046 §5.1.1 allows 70). */
#define MIME_MAX_BOUNDARY 200
/* Parameters kept per Content-Type or Content-Disposition field. */
#define MIME_MAX_PARAMS 64
/* Addresses (and group markers) put into the envelopes of one message. */
#define MIME_MAX_ADDRESSES 10000
/* Characters of a preview (RFC 8970 §4.1). */
#define MIME_MAX_PREVIEW 256
/* Header bytes of embedded messages decoded for the search text; GMime
 * spends microseconds per address, so this bounds the time too. */
#define MIME_MAX_DECODED_HEADERS (1u << 20)

/*
 * One part that IMAP can name. A part's MIME header is the bytes
 * header_off..body_off, its body body_off..end_off. The entry of section ""
 * is the whole message (HEADER and TEXT). A message whose body is not
 * multipart also has a part "1" (or "2.1" inside message part "2") with the
 * same bytes as the message, as RFC 9051 §6.4.5 numbers it.
 */
struct mime_part {
	char *section;		/* "", "1", "1.2", "2.1.3" */
	size_t header_off;	/* first byte of the part's header */
	size_t body_off;	/* first byte after the header's blank line */
	size_t end_off;		/* one past the body; the CRLF before the next
				 * boundary belongs to the boundary */
	size_t message_body_off;	/* is_message: where the embedded
					 * message's body starts, so its
					 * header (section.HEADER) is
					 * body_off..message_body_off and
					 * its text (section.TEXT) runs to
					 * end_off; 0 otherwise */
	uint32_t lines;		/* LF-terminated lines of the raw body */
	char *content_type;	/* lowercase "text/plain" */
	char *charset;		/* lowercase charset parameter, or NULL */
	char *transfer_encoding;	/* lowercase, or NULL when absent */
	bool is_multipart;
	bool is_message;	/* message/rfc822 or message/global */
};

/*
 * What one parse yields. Every pointer is owned by the struct and freed by
 * mime_info_deinit(); strings are NUL-terminated.
 */
struct mime_info {
	/* "(...)" exactly as sent after "ENVELOPE ", "BODYSTRUCTURE " (with
	 * extension data) and "BODY " (RFC 9051 §7.5.2, RFC 3501 §7.4.2).
	 * They may hold literals ({n}CRLF...) for 8-bit values. */
	char *envelope;
	char *bodystructure;
	char *body;
	struct mime_part *parts;	/* parts[0] is section "" */
	size_t nparts;
	/* UTF-8 for the search index, at most MIME_MAX_TEXT bytes: decoded
	 * Subject, From, To, Cc and Bcc of the message and of embedded
	 * messages, attachment file names, and decoded text/... bodies
	 * (HTML tags stay), one item per line. */
	char *text;
	/* RFC 8970 PREVIEW: at most MIME_MAX_PREVIEW characters (UTF-8) of
	 * the first inline text/plain part, else text/html as text (tags,
	 * style sheets, scripts and comments dropped, entities decoded),
	 * white space collapsed to single spaces; "" when there is none. */
	char *preview;
	int64_t date;		/* Date: as UTC unix seconds, -1 if missing
				 * or unparseable */
	int64_t date_local;	/* the same plus its zone's offset: the
				 * sender's clock reading as if in UTC (RFC
				 * 3501 §6.4.4 SENTON compares its day) */
	/* Decoded UTF-8 values of the top-level header, NULL when absent.
	 * The addresses read "Name <user@host>, ...". message_id and
	 * in_reply_to hold one message id (the first) without angle
	 * brackets; references holds every id, without brackets, separated
	 * by single spaces. */
	char *subject;
	char *from, *to, *cc, *bcc;
	char *message_id, *in_reply_to, *references;
	bool is_broken;		/* the structure was repaired best-effort */
};

/* Initializes GMime. Call once before starting threads; calling it again
 * from any thread is harmless. */
void mime_init(void);

/* Parses the len bytes of data (CRLF or bare LF line ends; NUL bytes
 * allowed) into *out. Borrows data for the call only. Returns 0, or -1 only
 * for impossible arguments (data NULL with len > 0); out is then zeroed.
 * Broken MIME is never an error. */
int mime_parse(const char *data, size_t len, struct mime_info *out);

/* Frees what *info owns and zeroes it; a zeroed info is fine too. */
void mime_info_deinit(struct mime_info *info);

/* Returns s as an IMAP string in a new buffer (caller frees): a quoted
 * string with \" and \\ escaped, or a literal "{n}\r\n..." when s holds
 * 8-bit bytes, CR or LF; "NIL" for NULL. */
char *mime_imap_string(const char *s);

/* Mailboxes one header field may name for mime_header_mailboxes(). */
#define MIME_MAX_SENDERS 100

/* Reads every field called name (case-insensitive; "From", "Sender") of
 * the header section of len bytes at header, up to its blank line, with
 * its continuation lines, as an address list (RFC 5322 §3.4: groups,
 * comments, quoted local parts, obsolete routes). Returns 0 with the
 * addr-spec "local@domain" of every mailbox in a new NULL-terminated array
 * (free with mime_strings_free) and *nfields_out the fields found; or -1
 * when a field holds anything that is not a complete mailbox or group, or
 * more than MIME_MAX_SENDERS mailboxes. */
int mime_header_mailboxes(const char *header, size_t len, const char *name,
    char ***addrs_out, size_t *nfields_out);
void mime_strings_free(char ***strings);

/* ---- Decoding for other layers (sieve) ----------------------------- */

/* The RFC 2047 words of an unstructured header value decoded to UTF-8
 * (a new string; "" for NULL). */
char *mime_header_decode(const char *v);
/* The len bytes of a part's body at data, undone from its
 * Content-Transfer-Encoding cte ("base64", "quoted-printable", anything
 * else or NULL: as is) and converted from charset (NULL: UTF-8, else
 * Latin-1 when invalid) to UTF-8, at most max bytes; NUL bytes become
 * spaces. Returns a new string. */
char *mime_body_decode(const char *data, size_t len, const char *cte,
    const char *charset, size_t max);

/* ---- SORT and THREAD (RFC 5256, RFC 5957) ---------------------------- */

/* The base subject of a decoded subject (RFC 5256 §2.1): without "Re:",
 * "Fwd:", "[blob]" leaders, "(fwd)" trailers and "[fwd: ...]" wrappers,
 * spaces collapsed. *is_reply_out (may be NULL) says whether a reply or
 * forward marker was removed (what §3 REFERENCES step 6 asks). subject
 * may be NULL (""). Returns a new string (caller frees). */
char *mime_subject_base(const char *subject, bool *is_reply_out);
/* The i;unicode-casemap collation key of the UTF-8 string s (RFC 5051:
 * titlecase, then NFKD); bytes that are not UTF-8 get i;ascii-casemap.
 * Two keys compare with strcmp(). s may be NULL (""). Caller frees. */
char *mime_collate_key(const char *s);

/* The address fields of an ENVELOPE (their position in it). */
enum mime_envelope_field {
	MIME_ENVELOPE_FROM = 2,
	MIME_ENVELOPE_TO = 5,
	MIME_ENVELOPE_CC = 6,
};
/* The first address of an address field, each part NULL when absent
 * (a group's start marker: mailbox is the group name, host NULL). */
struct mime_envelope_addr {
	char *name;		/* display-name as written (RFC 2047 words) */
	char *mailbox;		/* local part: RFC 5256 §3 addr-mailbox */
	char *host;
};
/* Reads the first address of field of an ENVELOPE text as mime_parse()
 * wrote it into *out, a group's start marker included (RFC 5256 §3);
 * zeroed when the field is NIL or empty. Returns 0, or -1 when the text is
 * not an ENVELOPE (out zeroed). Free with mime_envelope_addr_deinit. */
int mime_envelope_address(const char *envelope,
    enum mime_envelope_field field, struct mime_envelope_addr *out);
void mime_envelope_addr_deinit(struct mime_envelope_addr *a);
/* RFC 5957 §2: the decoded display-name of a, or its addr-spec when it
 * has none; "" for an empty a. Caller frees. */
char *mime_envelope_display(const struct mime_envelope_addr *a);

/* What threading needs of one message. Strings are borrowed, NULL when
 * absent; ids are without angle brackets. */
struct mime_thread_msg {
	int64_t sent;		/* RFC 5256 §2.2 sent date (the caller
				 * falls back to the internal date) */
	const char *subject;	/* decoded */
	const char *message_id;
	const char *references;	/* ids separated by spaces */
	const char *in_reply_to;	/* ids separated by spaces */
};
enum mime_thread_algo {
	MIME_THREAD_ORDEREDSUBJECT,
	MIME_THREAD_REFERENCES,
};
#define MIME_THREAD_NONE SIZE_MAX
/* Messages one threading takes. */
#define MIME_THREAD_MAX_MSGS (16u << 20)
/* One node of a thread tree: a message (msg indexes the input), or a
 * dummy (msg MIME_THREAD_NONE) standing for a message that is not there;
 * child and next are node indexes or MIME_THREAD_NONE. */
struct mime_thread_node {
	size_t msg;
	size_t child, next;
};
/* The threads: first is the first top-level node, the others follow by
 * next; siblings are in the order RFC 5256 §3 sends them. */
struct mime_thread {
	struct mime_thread_node *nodes;
	size_t nnodes;
	size_t first;
};
/* Threads the n messages msgs (in mailbox order, which breaks ties of
 * the sent date) by algo (RFC 5256 §3) into *out (free with
 * mime_thread_deinit). Returns 0, or -1 when n is over
 * MIME_THREAD_MAX_MSGS. Borrows msgs for the call only. */
int mime_thread_build(const struct mime_thread_msg *msgs, size_t n,
    enum mime_thread_algo algo, struct mime_thread *out);
void mime_thread_deinit(struct mime_thread *t);
/* The threads as IMAP sends them after "* THREAD " (RFC 5256 §4), message
 * i written as numbers[i]: "(1 2 (3)(4))(5)". Caller frees. */
char *mime_thread_format(const struct mime_thread *t,
    const uint32_t *numbers);

#endif
