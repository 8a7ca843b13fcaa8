/*
 * milter_int: what the files of src/milter share: the protocol's
 * constants (libmilter's mfdef.h), the packet and reply parser
 * (milter_proto.c, fuzzed by fuzz/fuzz_milter.c) and the header model the
 * end-of-message changes apply to. None of it does I/O.
 */
#ifndef POSTERN_MILTER_INT_H
#define POSTERN_MILTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/parse.h"

#define MILTER_VERSION 6

/* Commands (MTA to milter). */
#define SMFIC_ABORT	'A'
#define SMFIC_BODY	'B'
#define SMFIC_CONNECT	'C'
#define SMFIC_MACRO	'D'
#define SMFIC_BODYEOB	'E'
#define SMFIC_HELO	'H'
#define SMFIC_HEADER	'L'
#define SMFIC_MAIL	'M'
#define SMFIC_EOH	'N'
#define SMFIC_OPTNEG	'O'
#define SMFIC_QUIT	'Q'
#define SMFIC_RCPT	'R'
#define SMFIC_DATA	'T'

/* Replies (milter to MTA). */
#define SMFIR_ADDRCPT	'+'
#define SMFIR_DELRCPT	'-'
#define SMFIR_ADDRCPT_PAR '2'
#define SMFIR_SHUTDOWN	'4'
#define SMFIR_ACCEPT	'a'
#define SMFIR_REPLBODY	'b'
#define SMFIR_CONTINUE	'c'
#define SMFIR_DISCARD	'd'
#define SMFIR_CHGFROM	'e'
#define SMFIR_CONN_FAIL	'f'
#define SMFIR_ADDHEADER	'h'
#define SMFIR_INSHEADER	'i'
#define SMFIR_SETSYMLIST 'l'
#define SMFIR_CHGHEADER	'm'
#define SMFIR_PROGRESS	'p'
#define SMFIR_QUARANTINE 'q'
#define SMFIR_REJECT	'r'
#define SMFIR_SKIP	's'
#define SMFIR_TEMPFAIL	't'
#define SMFIR_REPLYCODE	'y'

/* Actions a milter may take at EOM (OPTNEG). */
#define SMFIF_ADDHDRS	0x01
#define SMFIF_CHGBODY	0x02
#define SMFIF_ADDRCPT	0x04
#define SMFIF_DELRCPT	0x08
#define SMFIF_CHGHDRS	0x10
#define SMFIF_QUARANTINE 0x20
#define SMFIF_CHGFROM	0x40
#define SMFIF_ADDRCPT_PAR 0x80
#define SMFIF_SETSYMLIST 0x100

/* Protocol steps a milter may leave out (SMFIP_NO*), or not answer
 * (SMFIP_NR_*). */
#define SMFIP_NOCONNECT	0x01
#define SMFIP_NOHELO	0x02
#define SMFIP_NOMAIL	0x04
#define SMFIP_NORCPT	0x08
#define SMFIP_NOBODY	0x10
#define SMFIP_NOHDRS	0x20
#define SMFIP_NOEOH	0x40
#define SMFIP_NR_HDR	0x80
#define SMFIP_NOUNKNOWN	0x100
#define SMFIP_NODATA	0x200
#define SMFIP_SKIP	0x400
#define SMFIP_RCPT_REJ	0x800
#define SMFIP_NR_CONN	0x1000
#define SMFIP_NR_HELO	0x2000
#define SMFIP_NR_MAIL	0x4000
#define SMFIP_NR_RCPT	0x8000
#define SMFIP_NR_DATA	0x10000
#define SMFIP_NR_UNKN	0x20000
#define SMFIP_NR_EOH	0x40000
#define SMFIP_NR_BODY	0x80000
#define SMFIP_HDR_LEADSPC 0x100000

/* What we do: the header and body changes, quarantine and removing
 * recipients (adding recipients and changing the sender are not
 * offered). */
#define MILTER_ACTIONS (SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_CHGHDRS | \
    SMFIF_QUARANTINE | SMFIF_DELRCPT)
/* The steps a milter may leave out or leave unanswered; RCPT_REJ (seeing
 * refused recipients) is not offered. */
#define MILTER_PROTOCOL (SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | \
    SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH | \
    SMFIP_NR_HDR | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_SKIP | \
    SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | \
    SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH | SMFIP_NR_BODY | \
    SMFIP_HDR_LEADSPC)

/* A packet from a milter is at most this long (its length word says),
 * body replacements included: libmilter sends 64 KiB chunks. */
#define MILTER_MAX_PACKET (1024 * 1024)
/* Body chunks we send (the protocol's MILTER_CHUNK_SIZE). */
#define MILTER_BODY_CHUNK 65535
/* The header section a milter sees and changes: fields and bytes. */
#define MILTER_MAX_FIELDS 10000
#define MILTER_MAX_HEADER (4 * 1024 * 1024)
/* Changes (header, quarantine) one milter may ask for at one EOM. */
#define MILTER_MAX_CHANGES 1000

/* Reads a packet's length word (4 bytes, network order): the length of
 * the command byte and data. Returns 0, or -1 when it is 0 or over max. */
int milter_packet_length(const unsigned char hdr[4], size_t max,
    uint32_t *len_out);
/* Splits one packet off the front of data: PARSE_DONE with *cmd_out,
 * *payload_out (borrowed), *plen_out and *used_out; PARSE_MORE when data
 * ends first; PARSE_ERROR for a bad length. */
enum parse_rc milter_packet_split(const char *data, size_t len,
    char *cmd_out, const char **payload_out, size_t *plen_out,
    size_t *used_out);

/* Appends a packet (length, cmd, data) to out. */
void milter_packet_append(struct buf *out, char cmd, const void *data,
    size_t len);

/* A reply, parsed: which fields are set depends on cmd. Strings point
 * into the packet. */
struct milter_reply {
	char cmd;
	uint32_t index;		/* INSHEADER, CHGHEADER */
	const char *name;	/* headers; ADDRCPT/DELRCPT; QUARANTINE */
	const char *value;	/* headers */
	size_t value_len;
	const char *data;	/* REPLBODY */
	size_t data_len;
	uint32_t version, actions, protocol;	/* OPTNEG */
};

/* Parses the payload of a reply packet whose command byte is cmd.
 * Returns 0, or -1 when it is malformed (a missing NUL, a bad header
 * name, a short OPTNEG) or cmd is unknown. */
int milter_reply_parse(char cmd, const char *payload, size_t len,
    struct milter_reply *r_out);

/* A REPLYCODE's text ("550 5.7.1 No", or several lines joined by CRLF or
 * LF) made into the SMTP reply we send: 4xx or 5xx, every line with the
 * same code, '-' after the code on all but the last, printable ASCII,
 * each line ending in CRLF, at most out_size - 1 bytes (whole lines).
 * 421 becomes 451: the milter does not close our connection. Returns 4
 * or 5, or -1 when the text is no such reply. */
int milter_replycode_clean(const char *text, size_t len, char *out,
    size_t out_size);

/* The header section of a message as the milters see and change it. */
struct milter_field {
	char *name;
	/* What follows the colon up to the field's final CRLF, folding
	 * included ("  text\r\n\tmore"). */
	char *value;
};

struct milter_header {
	struct milter_field *fields;
	size_t n;
	size_t bytes;		/* of names and values */
	bool is_changed;
};

/* Parses len bytes of a header section (fields, each ending in CRLF,
 * without the empty line). A line that is neither a field nor a
 * continuation (no colon) is kept as a field with an empty name only
 * when it cannot be better placed: it is appended to the field before.
 * Returns 0, or -1 over MILTER_MAX_FIELDS or MILTER_MAX_HEADER. */
int milter_header_parse(struct milter_header *h, const char *data,
    size_t len);
void milter_header_deinit(struct milter_header *h);

/* Whether name may be a header field's name (RFC 5322 §3.6.8: printable
 * ASCII but the colon, 1 to 255 bytes). */
bool is_milter_field_name_ok(const char *name);
/* A milter's value made into a field's value: a leading space added
 * (unless is_leadspc: it comes with its own), line ends made CRLF, and
 * each line after the first starting with white space (a tab added),
 * so that no value ends the header section or starts a field of its
 * own; NULs, lone CRs and trailing line ends dropped. Returns a new
 * string. */
char *milter_value_clean(const char *value, size_t len, bool is_leadspc);

/* The changes of EOM. Each returns 0, or -1 when it breaks the bounds
 * (the field count or bytes). index: CHGHEADER's is the 1-based
 * occurrence of name (an empty value deletes it; past the last one, the
 * field is added); INSHEADER's is the position among all fields (0: at
 * the top). */
int milter_header_add(struct milter_header *h, const char *name,
    const char *value, size_t len, bool is_leadspc);
int milter_header_insert(struct milter_header *h, uint32_t index,
    const char *name, const char *value, size_t len, bool is_leadspc);
int milter_header_change(struct milter_header *h, uint32_t index,
    const char *name, const char *value, size_t len, bool is_leadspc);

/* The section as bytes: each field "Name:value\r\n", then the empty
 * line. */
void milter_header_format(const struct milter_header *h, struct buf *out);

/* Appends len bytes of a replacement body to out with every line end
 * made CRLF; *is_cr tracks a CR that ended the previous call. Returns 0,
 * or -1 when out's cap is reached (part may have been appended). */
int milter_body_clean(struct buf *out, const char *data, size_t len,
    bool *is_cr);

#endif
