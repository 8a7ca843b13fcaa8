/*
 * Unit tests for mime: the ENVELOPE, BODY and BODYSTRUCTURE strings of
 * simple, multipart and nested messages (the Dovecot test messages, in
 * CRLF form, must give Dovecot's strings byte for byte), exact part offsets
 * for CRLF and bare-LF mail, RFC 2047 and RFC 2231 decoding, groups and
 * quoted display names, broken MIME repaired without a crash (missing or
 * absent boundaries, header lines without a colon, 10,000 nested parts,
 * more parts than MIME_MAX_PARTS), the search text, and parses running on
 * several threads at once.
 *
 * Every parse is also checked against the invariants a FETCH relies on:
 * offsets inside the message and inside the parent part, sections
 * well-formed and unique, line counts right, the IMAP strings one
 * balanced list, the text valid UTF-8 within MIME_MAX_TEXT.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gmime/gmime.h>

#include "lib/util.h"
#include "mime/mime.h"

/* Reads one IMAP value (atom, quoted string, literal or list) at s[*i].
 * Returns false when it is malformed. */
static bool
imap_value(const char *s, size_t len, size_t *i, unsigned depth)
{
	if (*i >= len || depth > 4 * MIME_MAX_DEPTH + 8)
		return false;
	if (s[*i] == '(') {
		(*i)++;
		for (;;) {
			if (*i >= len)
				return false;
			if (s[*i] == ')') {
				(*i)++;
				return true;
			}
			if (s[*i] == ' ')
				(*i)++;
			if (!imap_value(s, len, i, depth + 1))
				return false;
		}
	}
	if (s[*i] == '"') {
		for ((*i)++; *i < len; (*i)++) {
			if (s[*i] == '\\')
				(*i)++;
			else if (s[*i] == '"')
				break;
			else if (s[*i] == '\r' || s[*i] == '\n')
				return false;
		}
		if (*i >= len)
			return false;
		(*i)++;
		return true;
	}
	if (s[*i] == '{') {
		size_t n = 0;

		for ((*i)++; *i < len && s[*i] >= '0' && s[*i] <= '9'; (*i)++)
			n = n * 10 + (size_t)(s[*i] - '0');
		if (len - *i < 3 || memcmp(s + *i, "}\r\n", 3) != 0)
			return false;
		*i += 3;
		if (len - *i < n)
			return false;
		*i += n;
		return true;
	}
	size_t start = *i;

	while (*i < len && s[*i] != ' ' && s[*i] != '(' && s[*i] != ')' &&
	    s[*i] != '"' && s[*i] != '{')
		(*i)++;
	return *i > start;
}

static void
check_imap_list(const char *s)
{
	size_t i = 0, len;

	assert_non_null(s);
	len = strlen(s);
	assert_true(len > 0 && s[0] == '(');
	assert_true(imap_value(s, len, &i, 0));
	assert_int_equal(i, len);
}

static uint32_t
lf_count(const char *s, size_t start, size_t end)
{
	uint32_t n = 0;

	for (size_t i = start; i < end; i++)
		n += s[i] == '\n';
	return n;
}

static const struct mime_part *
part_get(const struct mime_info *mi, const char *section)
{
	for (size_t i = 0; i < mi->nparts; i++) {
		if (strcmp(mi->parts[i].section, section) == 0)
			return &mi->parts[i];
	}
	return NULL;
}

static bool
is_section(const char *s)
{
	bool at_start = true;

	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (at_start)
				return false;
			at_start = true;
		} else if (*s >= '0' && *s <= '9') {
			if (at_start && *s == '0')
				return false;
			at_start = false;
		} else {
			return false;
		}
	}
	return !at_start;
}

static void
check_invariants(const char *msg, size_t len, const struct mime_info *mi)
{
	assert_true(mi->nparts >= 1);
	assert_string_equal(mi->parts[0].section, "");
	assert_int_equal(mi->parts[0].header_off, 0);
	assert_int_equal(mi->parts[0].end_off, len);
	for (size_t i = 0; i < mi->nparts; i++) {
		const struct mime_part *p = &mi->parts[i];

		assert_true(p->header_off <= p->body_off);
		assert_true(p->body_off <= p->end_off);
		assert_true(p->end_off <= len);
		assert_int_equal(p->lines, lf_count(msg, p->body_off,
		    p->end_off));
		assert_non_null(p->content_type);
		if (p->is_message) {
			assert_true(p->body_off <= p->message_body_off);
			assert_true(p->message_body_off <= p->end_off);
		}
		if (i == 0)
			continue;
		assert_true(is_section(p->section));
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(p->section,
			    mi->parts[j].section);
		const char *dot = strrchr(p->section, '.');

		if (dot == NULL)
			continue;
		char *parent = xstrndup(p->section,
		    (size_t)(dot - p->section));
		const struct mime_part *pp = part_get(mi, parent);

		free(parent);
		assert_non_null(pp);
		assert_true(pp->body_off <= p->header_off);
		assert_true(p->end_off <= pp->end_off);
	}
	/* Siblings come in order and do not overlap. */
	for (size_t i = 1; i + 1 < mi->nparts; i++) {
		const struct mime_part *a = &mi->parts[i];

		for (size_t j = i + 1; j < mi->nparts; j++) {
			const struct mime_part *b = &mi->parts[j];
			const char *da = strrchr(a->section, '.');
			const char *db = strrchr(b->section, '.');
			size_t la = da ? (size_t)(da - a->section) : 0;
			size_t lb = db ? (size_t)(db - b->section) : 0;

			if (la == lb &&
			    strncmp(a->section, b->section, la) == 0)
				assert_true(a->end_off <= b->header_off);
		}
	}
	check_imap_list(mi->envelope);
	check_imap_list(mi->bodystructure);
	check_imap_list(mi->body);
	assert_non_null(mi->text);
	assert_true(strlen(mi->text) <= MIME_MAX_TEXT);
	assert_true(g_utf8_validate(mi->text, -1, NULL));
}

static void
parse_ok(const char *msg, size_t len, struct mime_info *mi)
{
	assert_int_equal(mime_parse(msg, len, mi), 0);
	check_invariants(msg, len, mi);
}

/* The body of part section is exactly body (and its MIME header starts
 * with header, when given). */
static void
assert_part(const char *msg, const struct mime_info *mi, const char *section,
    const char *header, const char *body)
{
	const struct mime_part *p = part_get(mi, section);

	assert_non_null(p);
	assert_int_equal(p->end_off - p->body_off, strlen(body));
	assert_memory_equal(msg + p->body_off, body, strlen(body));
	if (header != NULL) {
		assert_true(p->body_off - p->header_off >= strlen(header));
		assert_memory_equal(msg + p->header_off, header,
		    strlen(header));
	}
}

/* The message of RFC 9051 §6.3.12, APPEND. */
static const char simple_msg[] =
	"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
	"From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
	"Subject: afternoon meeting\r\n"
	"To: mooch@owatagu.siam.edu.example\r\n"
	"Message-Id: <B27397-0100000@Blurdybloop.example>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
	"\r\n"
	"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

static void
test_mime_simple_text_message(void **state)
{
	struct mime_info mi;
	const char *body = "Hello Joe, do you think we can meet at 3:30 "
	    "tomorrow?\r\n";

	(void)state;
	parse_ok(simple_msg, strlen(simple_msg), &mi);
	assert_string_equal(mi.envelope,
	    "(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"afternoon meeting\" "
	    "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
	    "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
	    "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
	    "((NIL NIL \"mooch\" \"owatagu.siam.edu.example\")) NIL NIL NIL "
	    "\"<B27397-0100000@Blurdybloop.example>\")");
	assert_string_equal(mi.bodystructure,
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" "
	    "55 1 NIL NIL NIL NIL)");
	assert_string_equal(mi.body,
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" "
	    "55 1)");
	assert_int_equal(mi.nparts, 2);
	assert_part(simple_msg, &mi, "", "Date: ", body);
	/* A single-part message is its own part 1 (RFC 9051 §6.4.5). */
	assert_part(simple_msg, &mi, "1", "Date: ", body);
	assert_string_equal(mi.parts[1].content_type, "text/plain");
	assert_string_equal(mi.parts[1].charset, "us-ascii");
	assert_null(mi.parts[1].transfer_encoding);
	assert_false(mi.parts[0].is_multipart);
	assert_int_equal(mi.date, 760686745);
	assert_string_equal(mi.subject, "afternoon meeting");
	assert_string_equal(mi.from,
	    "Fred Foobar <foobar@Blurdybloop.example>");
	assert_string_equal(mi.to, "mooch@owatagu.siam.edu.example");
	assert_null(mi.cc);
	assert_null(mi.bcc);
	assert_string_equal(mi.message_id,
	    "B27397-0100000@Blurdybloop.example");
	assert_null(mi.in_reply_to);
	assert_false(mi.is_broken);
	assert_non_null(strstr(mi.text, "afternoon meeting\n"));
	assert_non_null(strstr(mi.text, "meet at 3:30 tomorrow?"));
	mime_info_deinit(&mi);
	assert_null(mi.envelope);
}

static const char alt_msg[] =
	"From: a@example.com\r\n"
	"To: b@example.com\r\n"
	"Subject: alt\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/alternative; boundary=\"XX\"\r\n"
	"\r\n"
	"--XX\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"\r\n"
	"plain body\r\n"
	"--XX\r\n"
	"Content-Type: text/html; charset=utf-8\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"<p>html body</p>\r\n"
	"--XX--\r\n";

static void
test_mime_multipart_alternative(void **state)
{
	struct mime_info mi;

	(void)state;
	parse_ok(alt_msg, strlen(alt_msg), &mi);
	assert_string_equal(mi.bodystructure,
	    "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" "
	    "10 0 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"utf-8\") "
	    "NIL NIL \"quoted-printable\" 16 0 NIL NIL NIL NIL) "
	    "\"alternative\" (\"boundary\" \"XX\") NIL NIL NIL)");
	assert_string_equal(mi.body,
	    "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" "
	    "10 0)"
	    "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL "
	    "\"quoted-printable\" 16 0) \"alternative\")");
	assert_int_equal(mi.nparts, 3);
	assert_true(mi.parts[0].is_multipart);
	assert_string_equal(mi.parts[0].content_type, "multipart/alternative");
	/* The CRLF before each boundary belongs to the boundary. */
	assert_part(alt_msg, &mi, "1", "Content-Type: text/plain",
	    "plain body");
	assert_part(alt_msg, &mi, "2", "Content-Type: text/html",
	    "<p>html body</p>");
	assert_string_equal(part_get(&mi, "2")->transfer_encoding,
	    "quoted-printable");
	assert_string_equal(part_get(&mi, "2")->charset, "utf-8");
	assert_false(mi.is_broken);
	mime_info_deinit(&mi);
}

static const char nested_msg[] =
	"From: \"Alice Example\" <alice@example.com>\r\n"
	"To: bob@example.net\r\n"
	"Subject: nested\r\n"
	"Date: Tue, 1 Aug 2023 10:00:00 +0000\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
	"\r\n"
	"This is a multi-part message in MIME format.\r\n"
	"--outer\r\n"
	"Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
	"\r\n"
	"--inner\r\n"
	"Content-Type: text/plain; charset=us-ascii\r\n"
	"\r\n"
	"Hi Bob,\r\n"
	"see attached.\r\n"
	"--inner\r\n"
	"Content-Type: text/html; charset=us-ascii\r\n"
	"\r\n"
	"<p>Hi Bob,</p>\r\n"
	"--inner--\r\n"
	"--outer\r\n"
	"Content-Type: application/pdf; name=\"report.pdf\"\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
	"\r\n"
	"JVBERi0xLjQK\r\n"
	"--outer\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"From: carol@example.org\r\n"
	"Subject: original\r\n"
	"Message-ID: <orig@example.org>\r\n"
	"\r\n"
	"Original text.\r\n"
	"--outer--\r\n";

static void
test_mime_nested_mixed_with_attachment_and_message(void **state)
{
	struct mime_info mi;
	const struct mime_part *p;
	const char *emb_header = "From: carol@example.org\r\n"
	    "Subject: original\r\nMessage-ID: <orig@example.org>\r\n\r\n";

	(void)state;
	parse_ok(nested_msg, strlen(nested_msg), &mi);
	assert_string_equal(mi.bodystructure,
	    "("
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	    "22 1 NIL NIL NIL NIL)"
	    "(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	    "14 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"inner\") "
	    "NIL NIL NIL)"
	    "(\"application\" \"pdf\" (\"name\" \"report.pdf\") NIL NIL "
	    "\"base64\" 12 NIL (\"attachment\" (\"filename\" \"report.pdf\")) "
	    "NIL NIL)"
	    "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 92 "
	    "(NIL \"original\" ((NIL NIL \"carol\" \"example.org\")) "
	    "((NIL NIL \"carol\" \"example.org\")) "
	    "((NIL NIL \"carol\" \"example.org\")) NIL NIL NIL NIL "
	    "\"<orig@example.org>\") "
	    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	    "14 0 NIL NIL NIL NIL) 4 NIL NIL NIL NIL)"
	    " \"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)");
	assert_string_equal(mi.body,
	    "("
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	    "22 1)"
	    "(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	    "14 0) \"alternative\")"
	    "(\"application\" \"pdf\" (\"name\" \"report.pdf\") NIL NIL "
	    "\"base64\" 12)"
	    "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 92 "
	    "(NIL \"original\" ((NIL NIL \"carol\" \"example.org\")) "
	    "((NIL NIL \"carol\" \"example.org\")) "
	    "((NIL NIL \"carol\" \"example.org\")) NIL NIL NIL NIL "
	    "\"<orig@example.org>\") "
	    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	    "14 0) 4)"
	    " \"mixed\")");
	assert_int_equal(mi.nparts, 7);
	assert_string_equal(mi.parts[1].section, "1");
	assert_string_equal(mi.parts[2].section, "1.1");
	assert_string_equal(mi.parts[3].section, "1.2");
	assert_string_equal(mi.parts[4].section, "2");
	assert_string_equal(mi.parts[5].section, "3");
	assert_string_equal(mi.parts[6].section, "3.1");
	assert_part(nested_msg, &mi, "1",
	    "Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n",
	    "--inner\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
	    "Hi Bob,\r\nsee attached.\r\n"
	    "--inner\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n"
	    "<p>Hi Bob,</p>\r\n--inner--");
	assert_part(nested_msg, &mi, "1.1", "Content-Type: text/plain",
	    "Hi Bob,\r\nsee attached.");
	assert_part(nested_msg, &mi, "1.2", "Content-Type: text/html",
	    "<p>Hi Bob,</p>");
	assert_part(nested_msg, &mi, "2", "Content-Type: application/pdf",
	    "JVBERi0xLjQK");
	assert_string_equal(part_get(&mi, "2")->transfer_encoding, "base64");
	assert_part(nested_msg, &mi, "3", "Content-Type: message/rfc822\r\n",
	    "From: carol@example.org\r\nSubject: original\r\n"
	    "Message-ID: <orig@example.org>\r\n\r\nOriginal text.");
	p = part_get(&mi, "3");
	assert_true(p->is_message);
	/* 3.HEADER and 3.TEXT. */
	assert_int_equal(p->message_body_off - p->body_off,
	    strlen(emb_header));
	assert_memory_equal(nested_msg + p->body_off, emb_header,
	    strlen(emb_header));
	assert_memory_equal(nested_msg + p->message_body_off,
	    "Original text.", 14);
	/* 3.1 is the body of the message inside, its MIME header the
	 * message's header. */
	assert_part(nested_msg, &mi, "3.1", "From: carol@example.org",
	    "Original text.");
	assert_int_equal(part_get(&mi, "3.1")->header_off, p->body_off);
	assert_string_equal(mi.from, "Alice Example <alice@example.com>");
	assert_int_equal(mi.date, 1690884000);
	assert_non_null(strstr(mi.text, "Hi Bob,\r\nsee attached."));
	assert_non_null(strstr(mi.text, "report.pdf\n"));
	assert_non_null(strstr(mi.text, "original\ncarol@example.org\n"));
	assert_non_null(strstr(mi.text, "Original text."));
	assert_false(mi.is_broken);
	mime_info_deinit(&mi);
}

/* Converts the bare-LF string s into CRLF. */
static char *
crlf(const char *s)
{
	size_t n = 0;
	char *out, *o;

	for (const char *p = s; *p != '\0'; p++)
		n += *p == '\n' ? 2 : 1;
	out = o = xmalloc(n + 1);
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '\n')
			*o++ = '\r';
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

/* The test messages of Dovecot's src/lib-imap/test-imap-bodystructure.c.
 * Dovecot counts sizes as if every line ended in CRLF, so in CRLF form
 * the strings it expects are ours, byte for byte. */
static const char dovecot_msg[] =
	"From: user@domain.org\n"
	"Date: Sat, 24 Mar 2007 23:00:00 +0200\n"
	"Mime-Version: 1.0\n"
	"Content-Type: multipart/mixed; boundary=\"foo\n"
	" bar\"\n"
	"\n"
	"Root MIME prologue\n"
	"\n"
	"--foo bar\n"
	"Content-Type: text/x-myown; charset=us-ascii; "
	"foo=\"quoted\\\"string\"\n"
	"Content-ID: <foo@example.com>\n"
	"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
	"Content-Disposition: inline; foo=bar\n"
	"Content-Description: hellodescription\n"
	"Content-Language: en, fi, se\n"
	"Content-Location: http://example.com/test.txt\n"
	"\n"
	"hello\n"
	"\n"
	"--foo bar\n"
	"Content-Type: message/rfc822\n"
	"\n"
	"From: sub@domain.org\n"
	"To: sub-to1@domain.org, sub-to2@domain.org\n"
	"Date: Sun, 12 Aug 2012 12:34:56 +0300\n"
	"Subject: submsg\n"
	"Content-Type: multipart/alternative; boundary=\"sub1\"\n"
	"\n"
	"Sub MIME prologue\n"
	"--sub1\n"
	"Content-Type: text/html\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"<p>Hello world</p>\n"
	"\n"
	"--sub1\n"
	"Content-Type: text/plain\n"
	"Content-Transfer-Encoding: ?invalid\n"
	"\n"
	"Hello another world\n"
	"\n"
	"--sub1--\n"
	"Sub MIME epilogue\n"
	"\n"
	"--foo bar--\n"
	"Root MIME epilogue\n";

static const char dovecot_bodystructure[] =
	"((\"text\" \"x-myown\" (\"charset\" \"us-ascii\" \"foo\" "
	"\"quoted\\\"string\") \"<foo@example.com>\" \"hellodescription\" "
	"\"7bit\" 7 1 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"inline\" (\"foo\" "
	"\"bar\")) (\"en\" \"fi\" \"se\") \"http://example.com/test.txt\")"
	"(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 412 (\"Sun, 12 Aug 2012 "
	"12:34:56 +0300\" \"submsg\" ((NIL NIL \"sub\" \"domain.org\")) ((NIL "
	"NIL \"sub\" \"domain.org\")) ((NIL NIL \"sub\" \"domain.org\")) ((NIL "
	"NIL \"sub-to1\" \"domain.org\")(NIL NIL \"sub-to2\" \"domain.org\")) "
	"NIL NIL NIL NIL) ((\"text\" \"html\" (\"charset\" \"us-ascii\") NIL "
	"NIL \"8bit\" 20 1 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" "
	"\"us-ascii\") NIL NIL \"7bit\" 21 1 NIL NIL NIL NIL) \"alternative\" "
	"(\"boundary\" \"sub1\") NIL NIL NIL) 21 NIL NIL NIL NIL) \"mixed\" "
	"(\"boundary\" \"foo bar\") NIL NIL NIL)";

static const char dovecot_body[] =
	"((\"text\" \"x-myown\" (\"charset\" \"us-ascii\" \"foo\" "
	"\"quoted\\\"string\") \"<foo@example.com>\" \"hellodescription\" "
	"\"7bit\" 7 1)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 412 "
	"(\"Sun, 12 Aug 2012 12:34:56 +0300\" \"submsg\" ((NIL NIL \"sub\" "
	"\"domain.org\")) ((NIL NIL \"sub\" \"domain.org\")) ((NIL NIL \"sub\" "
	"\"domain.org\")) ((NIL NIL \"sub-to1\" \"domain.org\")(NIL NIL "
	"\"sub-to2\" \"domain.org\")) NIL NIL NIL NIL) ((\"text\" \"html\" "
	"(\"charset\" \"us-ascii\") NIL NIL \"8bit\" 20 1)(\"text\" \"plain\" "
	"(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 21 1) \"alternative\") "
	"21) \"mixed\")";

static void
test_mime_dovecot_bodystructure_crlf(void **state)
{
	char *msg = crlf(dovecot_msg);
	struct mime_info mi;

	(void)state;
	parse_ok(msg, strlen(msg), &mi);
	assert_string_equal(mi.bodystructure, dovecot_bodystructure);
	assert_string_equal(mi.body, dovecot_body);
	assert_part(msg, &mi, "1", "Content-Type: text/x-myown",
	    "hello\r\n");
	assert_part(msg, &mi, "2.1", "Content-Type: text/html",
	    "<p>Hello world</p>\r\n");
	assert_part(msg, &mi, "2.2", "Content-Type: text/plain",
	    "Hello another world\r\n");
	/* An invalid transfer encoding is none at all. */
	assert_null(part_get(&mi, "2.2")->transfer_encoding);
	mime_info_deinit(&mi);
	free(msg);
}

static void
test_mime_dovecot_bodystructure_bare_lf(void **state)
{
	struct mime_info mi;

	/* Same structure and lines; sizes are those of the raw bytes. */
	(void)state;
	parse_ok(dovecot_msg, strlen(dovecot_msg), &mi);
	assert_non_null(strstr(mi.bodystructure, "\"7bit\" 6 1 \"Q2hl"));
	assert_non_null(strstr(mi.bodystructure, "\"7bit\" 391 (\"Sun"));
	assert_non_null(strstr(mi.bodystructure, "\"8bit\" 19 1 NIL"));
	assert_non_null(strstr(mi.bodystructure,
	    "\"7bit\" 20 1 NIL NIL NIL NIL) \"alternative\""));
	assert_non_null(strstr(mi.bodystructure, ") 21 NIL NIL NIL NIL)"));
	assert_part(dovecot_msg, &mi, "1", "Content-Type: text/x-myown",
	    "hello\n");
	assert_part(dovecot_msg, &mi, "2.1", "Content-Type: text/html",
	    "<p>Hello world</p>\n");
	assert_part(dovecot_msg, &mi, "2.2", "Content-Type: text/plain",
	    "Hello another world\n");
	assert_memory_equal(dovecot_msg + part_get(&mi, "2")->message_body_off,
	    "Sub MIME prologue\n--sub1\n", 25);
	assert_int_equal(mi.date, 1174770000);
	mime_info_deinit(&mi);
}

static void
test_mime_dovecot_small_messages(void **state)
{
	static const struct {
		const char *msg;
		const char *bodystructure;
	} cases[] = {
		{ "From: user@domain.org\n"
		  "Date: Sat, 24 Mar 2017 23:00:00 +0200\n"
		  "Mime-Version: 1.0\n"
		  "Content-Type: text/plain; charset=utf-8\n"
		  "Content-Transfer-Encoding: 8bit\n"
		  "\n"
		  "body\n"
		  "\n",
		  "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
		  "\"8bit\" 8 2 NIL NIL NIL NIL)" },
		{ "From: user@domain.org\n"
		  "Date: Sat, 24 Mar 2017 23:00:00 +0200\n"
		  "Mime-Version: 1.0\n"
		  "Content-Type: multipart/mixed; boundary=\"foo bar\"\n"
		  "\n"
		  "--foo bar\n"
		  "Content-Type: text/plain; charset=us-ascii\n"
		  "Content-ID: <A.frop.example.com>\n"
		  "Content-Description: Container message\n"
		  "\n"
		  "See attached...\n"
		  "\n"
		  "--foo bar\n"
		  "Content-Type: message/rfc822\n"
		  "Content-ID: <B.frop.example.com>\n"
		  "Content-Description: Forwarded\n"
		  "\n"
		  "From: user@domain.org\n"
		  "Date: Sat, 24 Mar 2017 23:00:00 +0200\n"
		  "Mime-Version: 1.0\n"
		  "Content-Type: text/plain; charset=us-ascii\n"
		  "\n"
		  "body\n"
		  "\n"
		  "--foo bar--\n",
		  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") "
		  "\"<A.frop.example.com>\" \"Container message\" \"7bit\" "
		  "17 1 NIL NIL NIL NIL)(\"message\" \"rfc822\" NIL "
		  "\"<B.frop.example.com>\" \"Forwarded\" \"7bit\" 133 "
		  "(\"Sat, 24 Mar 2017 23:00:00 +0200\" NIL ((NIL NIL \"user\" "
		  "\"domain.org\")) ((NIL NIL \"user\" \"domain.org\")) ((NIL "
		  "NIL \"user\" \"domain.org\")) NIL NIL NIL NIL NIL) "
		  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		  "\"7bit\" 6 1 NIL NIL NIL NIL) 6 NIL NIL NIL NIL) \"mixed\" "
		  "(\"boundary\" \"foo bar\") NIL NIL NIL)" },
		{ "Content-Type: multipart/mixed; boundary=\"foo\"\n"
		  "\n",
		  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		  "\"7bit\" 0 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" "
		  "\"foo\") NIL NIL NIL)" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *msg = crlf(cases[i].msg);
		struct mime_info mi;

		parse_ok(msg, strlen(msg), &mi);
		assert_string_equal(mi.bodystructure, cases[i].bodystructure);
		mime_info_deinit(&mi);
		free(msg);
	}
}

static void
test_mime_rfc2047_subjects_decoded_but_raw_in_envelope(void **state)
{
	static const char msg1[] =
	    "From: =?iso-8859-1?q?J=F6rg?= <jorg@example.de>\r\n"
	    "Subject: =?utf-8?b?SGVsbMO2IFfDtnJsZA==?=\r\n"
	    "\r\n"
	    "x\r\n";
	static const char msg2[] =
	    "Subject: =?iso-8859-1?q?caf=E9_au_lait?= and\r\n"
	    " =?ISO-8859-1?Q?cr=E8me?=\r\n"
	    "\r\n";
	struct mime_info mi;

	(void)state;
	parse_ok(msg1, strlen(msg1), &mi);
	assert_string_equal(mi.subject, "Hell\xc3\xb6 W\xc3\xb6rld");
	assert_string_equal(mi.from, "J\xc3\xb6rg <jorg@example.de>");
	/* ENVELOPE carries what was written; the client decodes. */
	assert_string_equal(mi.envelope,
	    "(NIL \"=?utf-8?b?SGVsbMO2IFfDtnJsZA==?=\" "
	    "((\"=?iso-8859-1?q?J=F6rg?=\" NIL \"jorg\" \"example.de\")) "
	    "((\"=?iso-8859-1?q?J=F6rg?=\" NIL \"jorg\" \"example.de\")) "
	    "((\"=?iso-8859-1?q?J=F6rg?=\" NIL \"jorg\" \"example.de\")) "
	    "NIL NIL NIL NIL NIL)");
	assert_non_null(strstr(mi.text, "Hell\xc3\xb6 W\xc3\xb6rld\n"));
	assert_non_null(strstr(mi.text, "J\xc3\xb6rg"));
	mime_info_deinit(&mi);

	parse_ok(msg2, strlen(msg2), &mi);
	assert_string_equal(mi.subject, "caf\xc3\xa9 au lait and cr\xc3\xa8me");
	assert_string_equal(mi.envelope,
	    "(NIL \"=?iso-8859-1?q?caf=E9_au_lait?= and "
	    "=?ISO-8859-1?Q?cr=E8me?=\" NIL NIL NIL NIL NIL NIL NIL NIL)");
	mime_info_deinit(&mi);
}

static void
test_mime_envelope_groups_routes_and_quoted_names(void **state)
{
	static const char msg[] =
	    "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
	    "From: \"Doe, John\" <john.doe@example.com>\r\n"
	    "Sender: secretary@example.com (Jane Secretary)\r\n"
	    "Reply-To: \"John \\\"Johnny\\\" Doe\" <reply@example.com>\r\n"
	    "To: Team: alice@example.org, \"Bob Smith\" <bob@example.org>;,\r\n"
	    " carol@example.net\r\n"
	    "Cc: undisclosed-recipients:;\r\n"
	    "Bcc: <@relay.example,@hub.example:dave@example.com>\r\n"
	    "Subject: Re: plans\r\n"
	    "In-Reply-To: <prev@example.com>\r\n"
	    "References: <first@example.com>\r\n"
	    "  <prev@example.com>\r\n"
	    "Message-ID: <abc@example.com>\r\n"
	    "\r\n"
	    "body\r\n";
	struct mime_info mi;

	(void)state;
	parse_ok(msg, strlen(msg), &mi);
	assert_string_equal(mi.envelope,
	    "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"Re: plans\" "
	    "((\"Doe, John\" NIL \"john.doe\" \"example.com\")) "
	    "((\"Jane Secretary\" NIL \"secretary\" \"example.com\")) "
	    "((\"John \\\"Johnny\\\" Doe\" NIL \"reply\" \"example.com\")) "
	    "((NIL NIL \"Team\" NIL)(NIL NIL \"alice\" \"example.org\")"
	    "(\"Bob Smith\" NIL \"bob\" \"example.org\")(NIL NIL NIL NIL)"
	    "(NIL NIL \"carol\" \"example.net\")) "
	    "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
	    "((NIL \"@relay.example,@hub.example\" \"dave\" \"example.com\")) "
	    "\"<prev@example.com>\" \"<abc@example.com>\")");
	assert_int_equal(mi.date, 837595405);
	assert_string_equal(mi.message_id, "abc@example.com");
	assert_string_equal(mi.in_reply_to, "prev@example.com");
	assert_string_equal(mi.references,
	    "first@example.com prev@example.com");
	assert_non_null(strstr(mi.to, "alice@example.org"));
	assert_non_null(strstr(mi.to, "carol@example.net"));
	assert_non_null(strstr(mi.text, "Bob Smith"));
	mime_info_deinit(&mi);
}

static void
test_mime_envelope_repairs_missing_parts(void **state)
{
	static const char msg[] =
	    "From: user\r\n"
	    "To: John Smith, <>\r\n"
	    "Cc:\r\n"
	    "Subject: a\r\n"
	    "\tb\r\n"
	    "Date: not a date\r\n"
	    "\r\n";
	static const char msg8[] =
	    "Subject: Gr\xc3\xbc\xc3\x9f" "e\r\n"
	    "From: J\xc3\xb6rg <j@example.de>\r\n"
	    "\r\n";
	struct mime_info mi;

	(void)state;
	parse_ok(msg, strlen(msg), &mi);
	assert_string_equal(mi.envelope,
	    "(\"not a date\" \"a\tb\" "
	    "((NIL NIL \"user\" \"MISSING_DOMAIN\")) "
	    "((NIL NIL \"user\" \"MISSING_DOMAIN\")) "
	    "((NIL NIL \"user\" \"MISSING_DOMAIN\")) "
	    "((\"John Smith\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")"
	    "(NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) "
	    "NIL NIL NIL NIL)");
	assert_int_equal(mi.date, -1);
	mime_info_deinit(&mi);

	/* 8-bit values are sent as literals. */
	parse_ok(msg8, strlen(msg8), &mi);
	assert_string_equal(mi.envelope,
	    "(NIL {7}\r\nGr\xc3\xbc\xc3\x9f" "e "
	    "(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"example.de\")) "
	    "(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"example.de\")) "
	    "(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"example.de\")) "
	    "NIL NIL NIL NIL NIL)");
	assert_string_equal(mi.subject, "Gr\xc3\xbc\xc3\x9f" "e");
	mime_info_deinit(&mi);
}

static void
test_mime_bare_lf_offsets(void **state)
{
	static const char msg[] =
	    "Subject: lf\n"
	    "Content-Type: multipart/mixed; boundary=b\n"
	    "\n"
	    "preamble\n"
	    "--b\n"
	    "\n"
	    "one\n"
	    "two\n"
	    "--b\n"
	    "Content-Type: text/plain; charset=iso-8859-1\n"
	    "\n"
	    "\n"
	    "--b--\n"
	    "epilogue\n";
	struct mime_info mi;

	(void)state;
	parse_ok(msg, strlen(msg), &mi);
	assert_part(msg, &mi, "1", NULL, "one\ntwo");
	assert_int_equal(part_get(&mi, "1")->header_off,
	    part_get(&mi, "1")->body_off - 1);
	assert_part(msg, &mi, "2", "Content-Type: text/plain", "");
	assert_string_equal(part_get(&mi, "2")->charset, "iso-8859-1");
	assert_part(msg, &mi, "", "Subject: lf\n",
	    "preamble\n--b\n\none\ntwo\n--b\n"
	    "Content-Type: text/plain; charset=iso-8859-1\n\n\n--b--\n"
	    "epilogue\n");
	assert_string_equal(mi.bodystructure,
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	    "7 1 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" "
	    "\"iso-8859-1\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) \"mixed\" "
	    "(\"boundary\" \"b\") NIL NIL NIL)");
	assert_false(mi.is_broken);
	mime_info_deinit(&mi);
}

static void
test_mime_part_offsets_are_exact_in_every_prefix(void **state)
{
	size_t len = strlen(nested_msg);

	/* Whatever the cut, every part lies within its parent and the
	 * strings stay well-formed; this also walks every broken ending. */
	(void)state;
	for (size_t n = 0; n <= len; n++) {
		struct mime_info mi;
		char *copy = xmalloc(n + 1);

		memcpy(copy, nested_msg, n);
		parse_ok(copy, n, &mi);
		mime_info_deinit(&mi);
		free(copy);
	}
}

static void
test_mime_broken_missing_close_boundary(void **state)
{
	static const char msg[] =
	    "Content-Type: multipart/mixed; boundary=b1\r\n"
	    "\r\n"
	    "--b1\r\n"
	    "Content-Type: text/plain\r\n"
	    "\r\n"
	    "first\r\n"
	    "--b1\r\n"
	    "\r\n"
	    "second\r\n";
	struct mime_info mi;

	(void)state;
	parse_ok(msg, strlen(msg), &mi);
	assert_true(mi.is_broken);
	assert_part(msg, &mi, "1", "Content-Type: text/plain", "first");
	assert_part(msg, &mi, "2", NULL, "second\r\n");
	assert_string_equal(mi.bodystructure,
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	    "5 0 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" "
	    "\"us-ascii\") NIL NIL \"7bit\" 8 1 NIL NIL NIL NIL) \"mixed\" "
	    "(\"boundary\" "
	    "\"b1\") NIL NIL NIL)");
	mime_info_deinit(&mi);
}

static void
test_mime_broken_boundary_never_present(void **state)
{
	static const char msg[] =
	    "Content-Type: multipart/mixed; boundary=nothere\r\n"
	    "\r\n"
	    "just text\r\n"
	    "--almost\r\n";
	static const char nobound[] =
	    "Content-Type: multipart/mixed\r\n"
	    "\r\n"
	    "--x\r\n";
	struct mime_info mi;

	(void)state;
	parse_ok(msg, strlen(msg), &mi);
	assert_true(mi.is_broken);
	assert_int_equal(mi.nparts, 1);
	assert_string_equal(mi.bodystructure,
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	    "0 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"nothere\") NIL NIL "
	    "NIL)");
	assert_part(msg, &mi, "", NULL, "just text\r\n--almost\r\n");
	mime_info_deinit(&mi);

	parse_ok(nobound, strlen(nobound), &mi);
	assert_true(mi.is_broken);
	assert_string_equal(mi.body,
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	    "0 0) \"mixed\")");
	mime_info_deinit(&mi);
}

static void
test_mime_broken_header_without_colon(void **state)
{
	static const char msg[] =
	    "Subject: ok\r\n"
	    "this line has no colon\r\n"
	    "From: a@b.example\r\n"
	    "\r\n"
	    "body\r\n";
	static const char cut[] =
	    "Content-Type: multipart/mixed; boundary=b\r\n"
	    "\r\n"
	    "--b\r\n"
	    "Content-Type: text/plain\r\n"
	    "--b\r\n"
	    "Content-Type: message/rfc822\r\n"
	    "--b--\r\n";
	struct mime_info mi;

	(void)state;
	parse_ok(msg, strlen(msg), &mi);
	assert_true(mi.is_broken);
	assert_string_equal(mi.subject, "ok");
	assert_string_equal(mi.from, "a@b.example");
	assert_part(msg, &mi, "", "Subject: ok\r\n", "body\r\n");
	mime_info_deinit(&mi);

	/* Headers cut short by a boundary: parts without a body, and an
	 * empty message that still has an envelope. */
	parse_ok(cut, strlen(cut), &mi);
	assert_part(cut, &mi, "1", "Content-Type: text/plain\r\n", "");
	assert_part(cut, &mi, "2", "Content-Type: message/rfc822\r\n", "");
	assert_string_equal(mi.body,
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	    "0 0)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 0 (NIL NIL NIL "
	    "NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" "
	    "\"us-ascii\") NIL NIL \"7bit\" 0 0) 0) \"mixed\")");
	mime_info_deinit(&mi);
}

/* Appends printf output to a growing buffer. */
struct sbuf {
	char *s;
	size_t len;
	size_t size;
};

static void
sbuf_addf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	while (b->len + (size_t)n + 1 > b->size) {
		b->size = b->size ? b->size * 2 : 4096;
		b->s = xrealloc(b->s, b->size);
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static size_t
max_section_depth(const struct mime_info *mi)
{
	size_t max = 0;

	for (size_t i = 0; i < mi->nparts; i++) {
		size_t d = 1;

		for (const char *c = mi->parts[i].section; *c != '\0'; c++)
			d += *c == '.';
		if (d > max)
			max = d;
	}
	return max;
}

static void
test_mime_ten_thousand_nested_parts_hit_the_depth_limit(void **state)
{
	struct sbuf b = { 0 };
	struct mime_info mi;
	const struct mime_part *deepest = NULL;
	int i;

	(void)state;
	for (i = 0; i < 10000; i++)
		sbuf_addf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n"
		    "\r\n--b%d\r\n", i, i);
	sbuf_addf(&b, "Content-Type: text/plain\r\n\r\nleaf\r\n");
	for (i = 9999; i >= 0; i--)
		sbuf_addf(&b, "--b%d--\r\n", i);
	parse_ok(b.s, b.len, &mi);
	assert_true(mi.is_broken);
	assert_true(mi.nparts <= MIME_MAX_DEPTH + 1);
	assert_true(max_section_depth(&mi) < MIME_MAX_DEPTH);
	for (size_t k = 0; k < mi.nparts; k++) {
		if (deepest == NULL || strlen(mi.parts[k].section) >
		    strlen(deepest->section))
			deepest = &mi.parts[k];
	}
	/* The container past the limit is a leaf of unknown content. */
	assert_string_equal(deepest->content_type, "application/octet-stream");
	assert_false(deepest->is_multipart);
	assert_non_null(strstr(mi.bodystructure,
	    "(\"application\" \"octet-stream\" (\"boundary\""));
	mime_info_deinit(&mi);

	/* The same with messages inside messages, which have no boundary. */
	b.len = 0;
	for (i = 0; i < 10000; i++)
		sbuf_addf(&b, "Subject: %d\r\nContent-Type: message/rfc822\r\n"
		    "\r\n", i);
	sbuf_addf(&b, "Subject: last\r\n\r\nleaf\r\n");
	parse_ok(b.s, b.len, &mi);
	assert_true(mi.is_broken);
	assert_true(max_section_depth(&mi) <= MIME_MAX_DEPTH);
	assert_string_equal(mi.parts[mi.nparts - 1].content_type,
	    "application/octet-stream");
	mime_info_deinit(&mi);
	free(b.s);
}

static void
test_mime_more_parts_than_the_limit(void **state)
{
	struct sbuf b = { 0 };
	struct mime_info mi;

	(void)state;
	sbuf_addf(&b, "Content-Type: multipart/mixed; boundary=z\r\n\r\n");
	for (int i = 0; i < MIME_MAX_PARTS + 500; i++)
		sbuf_addf(&b, "--z\r\n\r\npart %d\r\n", i);
	sbuf_addf(&b, "--z--\r\n");
	parse_ok(b.s, b.len, &mi);
	assert_true(mi.is_broken);
	assert_int_equal(mi.nparts, MIME_MAX_PARTS);
	assert_part(b.s, &mi, "1", NULL, "part 0");
	assert_part(b.s, &mi, "4095", NULL, "part 4094");
	assert_null(part_get(&mi, "4096"));
	mime_info_deinit(&mi);
	free(b.s);
}

static void
test_mime_text_holds_decoded_base64_and_qp_bodies(void **state)
{
	static const char msg[] =
	    "Subject: text\r\n"
	    "Content-Type: multipart/mixed; boundary=q\r\n"
	    "\r\n"
	    "--q\r\n"
	    "Content-Type: text/plain; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "R3LDvMOfZSBhdXMgS8O2bG4sIHNjaMO2bmUgU3RyYcOfZQ==\r\n"
	    "--q\r\n"
	    "Content-Type: text/plain; charset=\"iso-8859-1\"\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "caf=E9 cr=E8me =\r\n"
	    "br=FBl=E9e\r\n"
	    "--q\r\n"
	    "Content-Type: text/plain\r\n"
	    "\r\n"
	    "unlabelled na\xefve\r\n"
	    "--q\r\n"
	    "Content-Type: image/png\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "c2VjcmV0IGltYWdl\r\n"
	    "--q--\r\n";
	struct mime_info mi;

	(void)state;
	parse_ok(msg, strlen(msg), &mi);
	assert_non_null(strstr(mi.text, "Gr\xc3\xbc\xc3\x9f" "e aus "
	    "K\xc3\xb6ln, sch\xc3\xb6ne Stra\xc3\x9f" "e"));
	assert_non_null(strstr(mi.text, "caf\xc3\xa9 cr\xc3\xa8me "
	    "br\xc3\xbbl\xc3\xa9" "e"));
	assert_non_null(strstr(mi.text, "unlabelled na\xc3\xafve"));
	/* Only text parts are decoded. */
	assert_null(strstr(mi.text, "secret image"));
	mime_info_deinit(&mi);
}

static void
test_mime_text_is_bounded(void **state)
{
	size_t body = MIME_MAX_TEXT + (1u << 20), hlen;
	static const char head[] = "Subject: big\r\n\r\n";
	struct mime_info mi;
	char *msg;

	(void)state;
	hlen = strlen(head);
	msg = xmalloc(hlen + body);
	memcpy(msg, head, hlen);
	/* "ä" is two bytes: the cut must not split one. */
	for (size_t i = 0; i + 1 < body; i += 2)
		memcpy(msg + hlen + i, "\xc3\xa4", 2);
	parse_ok(msg, hlen + body - 1, &mi);
	assert_true(strlen(mi.text) <= MIME_MAX_TEXT);
	assert_true(strlen(mi.text) > MIME_MAX_TEXT - 8);
	mime_info_deinit(&mi);
	free(msg);
}

static void
test_mime_rfc2231_parameters(void **state)
{
	static const char msg[] =
	    "Content-Type: application/octet-stream;\r\n"
	    " name*0*=utf-8''%E2%82%AC%20rates;\r\n"
	    " name*1=\".txt\"\r\n"
	    "Content-Disposition: attachment;\r\n"
	    " filename*=utf-8''%E2%82%AC%20rates.txt\r\n"
	    "\r\n"
	    "data\r\n";
	static const char split[] =
	    "Content-Type: multipart/mixed; boundary*0=\"ab\"; "
	    "boundary*1=\"cd\"\r\n"
	    "\r\n"
	    "--abcd\r\n"
	    "\r\n"
	    "in\r\n"
	    "--abcd--\r\n";
	struct mime_info mi;

	(void)state;
	parse_ok(msg, strlen(msg), &mi);
	/* Continuations merged, the value left encoded for the client, as
	 * Dovecot does. */
	assert_string_equal(mi.bodystructure,
	    "(\"application\" \"octet-stream\" (\"name*\" "
	    "\"utf-8''%E2%82%AC%20rates.txt\") NIL NIL \"7bit\" 6 NIL "
	    "(\"attachment\" (\"filename*\" \"utf-8''%E2%82%AC%20rates.txt\")) "
	    "NIL NIL)");
	/* Decoded by GMime for the search text. */
	assert_non_null(strstr(mi.text, "\xe2\x82\xac rates.txt\n"));
	mime_info_deinit(&mi);

	parse_ok(split, strlen(split), &mi);
	assert_false(mi.is_broken);
	assert_part(split, &mi, "1", NULL, "in");
	assert_non_null(strstr(mi.bodystructure, "(\"boundary\" \"abcd\")"));
	mime_info_deinit(&mi);
}

static void
test_mime_unknown_charsets_read_as_latin1(void **state)
{
	static const char msg[] =
	    "Subject: =?x-no-such-charset?q?caf=E9?= =?utf-8*en?q?cr=C3=A8me?="
	    "\r\n"
	    "Content-Type: text/plain; charset=x-no-such-charset;\r\n"
	    " name*=x-bogus'en'%E9t%E9.txt\r\n"
	    "\r\n"
	    "na\xefve\r\n";
	struct mime_info mi;

	/* An unknown charset never reaches GMime, which would remember its
	 * name for good; such text reads as ISO-8859-1. */
	(void)state;
	parse_ok(msg, strlen(msg), &mi);
	assert_string_equal(mi.subject, "caf\xc3\xa9" "cr\xc3\xa8me");
	assert_string_equal(mi.parts[1].charset, "x-no-such-charset");
	assert_non_null(strstr(mi.text, "\xc3\xa9t\xc3\xa9.txt\n"));
	assert_non_null(strstr(mi.text, "na\xc3\xafve"));
	/* The raw values stay in the IMAP strings. */
	assert_non_null(strstr(mi.bodystructure,
	    "\"name*\" \"x-bogus'en'%E9t%E9.txt\""));
	mime_info_deinit(&mi);
}

static void
test_mime_digest_parts_default_to_messages(void **state)
{
	static const char msg[] =
	    "Content-Type: multipart/digest; boundary=d\r\n"
	    "\r\n"
	    "--d\r\n"
	    "\r\n"
	    "From: x@example.com\r\n"
	    "Subject: first\r\n"
	    "\r\n"
	    "one\r\n"
	    "--d--\r\n";
	struct mime_info mi;

	(void)state;
	parse_ok(msg, strlen(msg), &mi);
	assert_string_equal(mi.body,
	    "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 42 (NIL \"first\" "
	    "((NIL NIL \"x\" \"example.com\")) "
	    "((NIL NIL \"x\" \"example.com\")) "
	    "((NIL NIL \"x\" \"example.com\")) NIL NIL NIL NIL NIL) (\"text\" "
	    "\"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 0) 3) "
	    "\"digest\")");
	assert_true(part_get(&mi, "1")->is_message);
	assert_part(msg, &mi, "1.1", "From: x@example.com", "one");
	mime_info_deinit(&mi);
}

static void
test_mime_empty_and_headerless_messages(void **state)
{
	struct mime_info mi;

	(void)state;
	parse_ok("", 0, &mi);
	assert_string_equal(mi.envelope,
	    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	assert_string_equal(mi.bodystructure,
	    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	    "0 0 NIL NIL NIL NIL)");
	assert_int_equal(mi.date, -1);
	mime_info_deinit(&mi);

	parse_ok(NULL, 0, &mi);
	mime_info_deinit(&mi);
	assert_int_equal(mime_parse(NULL, 5, &mi), -1);
	assert_null(mi.envelope);

	parse_ok("\r\nbody only\r\n", 13, &mi);
	assert_part("\r\nbody only\r\n", &mi, "1", NULL, "body only\r\n");
	mime_info_deinit(&mi);

	/* NUL bytes are data. */
	parse_ok("Subject: a\0b\r\n\r\nx\0y", 19, &mi);
	assert_string_equal(mi.envelope,
	    "(NIL {5}\r\na\xef\xbf\xbd" "b NIL NIL NIL NIL NIL NIL NIL NIL)");
	assert_int_equal(part_get(&mi, "1")->end_off, 19);
	mime_info_deinit(&mi);
}

static void
test_mime_imap_string_quotes_or_literals(void **state)
{
	char *s;

	(void)state;
	s = mime_imap_string(NULL);
	assert_string_equal(s, "NIL");
	free(s);
	s = mime_imap_string("");
	assert_string_equal(s, "\"\"");
	free(s);
	s = mime_imap_string("say \"hi\" \\ bye");
	assert_string_equal(s, "\"say \\\"hi\\\" \\\\ bye\"");
	free(s);
	s = mime_imap_string("two\r\nlines");
	assert_string_equal(s, "{10}\r\ntwo\r\nlines");
	free(s);
	s = mime_imap_string("K\xc3\xb6ln");
	assert_string_equal(s, "{5}\r\nK\xc3\xb6ln");
	free(s);
}

/* Several parses at once must give what one gives alone. */
struct thread_job {
	const char *msg;
	size_t len;
	const char *bodystructure;
	const char *text;
	bool ok;
};

static void *
thread_run(void *arg)
{
	struct thread_job *job = arg;

	job->ok = true;
	for (int i = 0; i < 100 && job->ok; i++) {
		struct mime_info mi;

		if (mime_parse(job->msg, job->len, &mi) != 0 ||
		    strcmp(mi.bodystructure, job->bodystructure) != 0 ||
		    strcmp(mi.text, job->text) != 0)
			job->ok = false;
		mime_info_deinit(&mi);
	}
	return NULL;
}

static void
test_mime_parses_on_many_threads(void **state)
{
	static const char latin[] =
	    "Subject: =?iso-8859-15?q?=A4uro?=\r\n"
	    "Content-Type: text/plain; charset=iso-8859-15\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "=A4 caf=E9\r\n";
	const char *msgs[] = { nested_msg, alt_msg, simple_msg, latin };
	struct thread_job jobs[8];
	struct mime_info ref[ARRAY_LEN(msgs)];
	pthread_t t[ARRAY_LEN(jobs)];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(msgs); i++)
		parse_ok(msgs[i], strlen(msgs[i]), &ref[i]);
	assert_non_null(strstr(ref[3].text, "\xe2\x82\xac caf\xc3\xa9"));
	for (size_t i = 0; i < ARRAY_LEN(jobs); i++) {
		size_t m = i % ARRAY_LEN(msgs);

		jobs[i].msg = msgs[m];
		jobs[i].len = strlen(msgs[m]);
		jobs[i].bodystructure = ref[m].bodystructure;
		jobs[i].text = ref[m].text;
		assert_int_equal(pthread_create(&t[i], NULL, thread_run,
		    &jobs[i]), 0);
	}
	for (size_t i = 0; i < ARRAY_LEN(jobs); i++) {
		pthread_join(t[i], NULL);
		assert_true(jobs[i].ok);
	}
	for (size_t i = 0; i < ARRAY_LEN(msgs); i++)
		mime_info_deinit(&ref[i]);
}

/* The mailboxes of the fields called name in header, joined by " ", or
 * "ERROR"; *nfields_out the fields found. */
static char *
mailboxes(const char *header, const char *name, size_t *nfields_out)
{
	char **v = NULL, *out = xstrdup("");

	if (mime_header_mailboxes(header, strlen(header), name, &v,
	    nfields_out) < 0) {
		free(out);
		return xstrdup("ERROR");
	}
	for (char **a = v; *a != NULL; a++) {
		char *next = xasprintf("%s%s%s", out, out[0] ? " " : "", *a);

		free(out);
		out = next;
	}
	mime_strings_free(&v);
	return out;
}

static void
test_mime_header_mailboxes_reads_every_form(void **state)
{
	static const struct {
		const char *header, *want;
	} cases[] = {
		{ "From: a@x.test\r\n", "a@x.test" },
		{ "from : A <a@x.test>\r\n\r\nFrom: body@x.test\r\n",
		    "a@x.test" },
		{ "From: \"A, B\" <a@x.test>, (c) b@x.test (B)\r\n",
		    "a@x.test b@x.test" },
		{ "From: =?utf-8?q?A=40B?= <a@x.test>\r\n", "a@x.test" },
		{ "From: G: a@x.test, B <b@x.test>;, c@x.test\r\n",
		    "a@x.test b@x.test c@x.test" },
		{ "From: a@x.test,\r\n\tb@x.test\r\n", "a@x.test b@x.test" },
		{ "From: \"a\"@x.test\r\n", "a@x.test" },
		{ "From: <@relay.test:a@x.test>\r\n", "a@x.test" },
		{ "From: empty:;\r\n", "" },
		{ "To: a@x.test\r\n", "" },
		/* Garbage, a name alone, no domain, an open angle, an
		 * unended group: nothing to be sure of. */
		{ "From: a@x.test <b@x.test>\r\n", "ERROR" },
		{ "From: Just A Name\r\n", "ERROR" },
		{ "From: a\r\n", "ERROR" },
		{ "From: <a@x.test\r\n", "ERROR" },
		{ "From: <a@x.test junk>\r\n", "ERROR" },
		{ "From: G: a@x.test\r\n", "ERROR" },
		{ "From: a@x.test;\r\n", "ERROR" },
		{ "From: a@[192.0.2.1]\r\n", "ERROR" },
		{ "From: a@[x@y\r\n", "ERROR" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;
		char *got = mailboxes(cases[i].header, "From", &n);

		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"",
			    cases[i].header, got, cases[i].want);
		free(got);
	}
}

static void
test_mime_header_mailboxes_counts_fields(void **state)
{
	size_t n;
	char *got;

	(void)state;
	got = mailboxes("From: a@x.test\r\nSender: s@x.test\r\n"
	    "From: b@x.test\r\n", "From", &n);
	assert_string_equal(got, "a@x.test b@x.test");
	assert_int_equal(n, 2);
	free(got);
	got = mailboxes("From: a@x.test\r\n", "Sender", &n);
	assert_string_equal(got, "");
	assert_int_equal(n, 0);
	free(got);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mime_simple_text_message),
		cmocka_unit_test(test_mime_multipart_alternative),
		cmocka_unit_test(
		    test_mime_nested_mixed_with_attachment_and_message),
		cmocka_unit_test(test_mime_dovecot_bodystructure_crlf),
		cmocka_unit_test(test_mime_dovecot_bodystructure_bare_lf),
		cmocka_unit_test(test_mime_dovecot_small_messages),
		cmocka_unit_test(
		    test_mime_rfc2047_subjects_decoded_but_raw_in_envelope),
		cmocka_unit_test(
		    test_mime_envelope_groups_routes_and_quoted_names),
		cmocka_unit_test(test_mime_envelope_repairs_missing_parts),
		cmocka_unit_test(test_mime_bare_lf_offsets),
		cmocka_unit_test(
		    test_mime_part_offsets_are_exact_in_every_prefix),
		cmocka_unit_test(test_mime_broken_missing_close_boundary),
		cmocka_unit_test(test_mime_broken_boundary_never_present),
		cmocka_unit_test(test_mime_broken_header_without_colon),
		cmocka_unit_test(
		    test_mime_ten_thousand_nested_parts_hit_the_depth_limit),
		cmocka_unit_test(test_mime_more_parts_than_the_limit),
		cmocka_unit_test(
		    test_mime_text_holds_decoded_base64_and_qp_bodies),
		cmocka_unit_test(test_mime_text_is_bounded),
		cmocka_unit_test(test_mime_rfc2231_parameters),
		cmocka_unit_test(test_mime_unknown_charsets_read_as_latin1),
		cmocka_unit_test(test_mime_digest_parts_default_to_messages),
		cmocka_unit_test(test_mime_empty_and_headerless_messages),
		cmocka_unit_test(test_mime_imap_string_quotes_or_literals),
		cmocka_unit_test(test_mime_parses_on_many_threads),
		cmocka_unit_test(test_mime_header_mailboxes_reads_every_form),
		cmocka_unit_test(test_mime_header_mailboxes_counts_fields),
	};
	int rc;

	mime_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	g_mime_shutdown();
	return rc;
}
