/*
 * Unit tests for delivery status notifications (queue_dsn.c): the exact
 * bytes of an RFC 3464 report (multipart/report, RFC 6522), per-recipient
 * fields, the quoted header, and the RFC 3461 parameters the runner reads
 * (NOTIFY, ENVID, ORCPT, RET).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "queue/queue_int.h"

static void
test_queue_dsn_failed_report_bytes(void **state)
{
	static const char orig[] = "From: alice@a.test\r\nSubject: hi\r\n";
	static const char want[] =
	    "From: Mail Delivery System <MAILER-DAEMON@mx.a.test>\r\n"
	    "To: <alice@a.test>\r\n"
	    "Subject: Undelivered Mail Returned to Sender\r\n"
	    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	    "Message-ID: <dsn.1@mx.a.test>\r\n"
	    "Auto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"=_b\"\r\n"
	    "\r\n"
	    "This is a MIME-encapsulated message.\r\n"
	    "\r\n"
	    "--=_b\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n"
	    "Content-Description: Notification\r\n"
	    "\r\n"
	    "This is the mail system at host mx.a.test.\r\n"
	    "\r\n"
	    "Your message could not be delivered to the following "
	    "recipients. This is a permanent error; the message will not be "
	    "sent again.\r\n"
	    "\r\n"
	    "<bob@b.test>: host mx.b.test said: 550 5.1.1 no such user\r\n"
	    "\r\n"
	    "<x@nx.test>: the domain nx.test does not exist\r\n"
	    "\r\n"
	    "--=_b\r\n"
	    "Content-Type: message/delivery-status\r\n"
	    "Content-Description: Delivery report\r\n"
	    "\r\n"
	    "Reporting-MTA: dns; mx.a.test\r\n"
	    "Original-Envelope-Id: e1\r\n"
	    "Arrival-Date: Tue, 14 Nov 2023 22:13:00 +0000\r\n"
	    "\r\n"
	    "Original-Recipient: rfc822;Bob@b.test\r\n"
	    "Final-Recipient: rfc822; bob@b.test\r\n"
	    "Action: failed\r\n"
	    "Status: 5.1.1\r\n"
	    "Remote-MTA: dns; mx.b.test\r\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
	    "Last-Attempt-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	    "\r\n"
	    "Final-Recipient: rfc822; x@nx.test\r\n"
	    "Action: failed\r\n"
	    "Status: 5.1.2\r\n"
	    "Diagnostic-Code: x-postern; the domain nx.test does not exist\r\n"
	    "Last-Attempt-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	    "\r\n"
	    "--=_b\r\n"
	    "Content-Type: text/rfc822-headers\r\n"
	    "Content-Description: Undelivered message header\r\n"
	    "\r\n"
	    "From: alice@a.test\r\n"
	    "Subject: hi\r\n"
	    "\r\n"
	    "--=_b--\r\n";
	const struct queue_dsn_rcpt rcpts[] = {
		{ "bob@b.test", "rfc822;Bob@b.test", "5.1.1", "mx.b.test",
		    "550 5.1.1 no such user" },
		{ "x@nx.test", NULL, "5.1.2", NULL,
		    "the domain nx.test does not exist" },
	};
	const struct queue_dsn dsn = {
		.action = QUEUE_DSN_FAILED,
		.reporting_mta = "mx.a.test",
		.sender = "alice@a.test",
		.envid = "e1",
		.arrival = 1700000000 - 20,
		.now = 1700000000,
		.rcpts = rcpts,
		.nrcpts = 2,
		.original = orig,
		.original_len = strlen(orig),
		.boundary = "=_b",
		.message_id = "<dsn.1@mx.a.test>",
	};
	size_t len;
	char *text;

	(void)state;
	text = queue_dsn_build(&dsn, &len);
	assert_int_equal(len, strlen(text));
	assert_string_equal(text, want);
	free(text);
}

static void
test_queue_dsn_delay_warning_and_hostile_text(void **state)
{
	const struct queue_dsn_rcpt rcpt = {
		"bob@b.test", NULL, "4.4.1", NULL,
		"timeout\r\nInjected: header",
	};
	const struct queue_dsn dsn = {
		.action = QUEUE_DSN_DELAYED,
		.reporting_mta = "mx.a.test",
		.sender = "alice@a.test\r\nBcc: x@y",
		.now = 1700000000,
		.rcpts = &rcpt,
		.nrcpts = 1,
		.boundary = "=_b",
		.message_id = "<d@x>",
	};
	size_t len;
	char *text;

	(void)state;
	text = queue_dsn_build(&dsn, &len);
	assert_non_null(strstr(text, "Subject: Delayed Mail (still being "
	    "retried)\r\n"));
	assert_non_null(strstr(text, "\r\nAction: delayed\r\nStatus: 4.4.1"
	    "\r\n"));
	/* Line ends in what others gave us become '?': no new fields. */
	assert_non_null(strstr(text, "To: <alice@a.test??Bcc: x@y>\r\n"));
	assert_null(strstr(text, "\r\nBcc:"));
	assert_null(strstr(text, "\r\nInjected:"));
	assert_non_null(strstr(text, "Diagnostic-Code: x-postern; timeout??"
	    "Injected: header\r\n"));
	free(text);
}

/* RFC 3464 §2.3.3 "delivered" and "relayed" (RFC 3461 §6.2): the
 * action, a 2.x.x status, the header of the message, never the whole. */
static void
test_queue_dsn_success_reports_delivered_and_relayed(void **state)
{
	static const char orig[] = "Subject: hi\r\n";
	const struct queue_dsn_rcpt local = {
		"dave@a.test", "rfc822;Dave@a.test", "2.0.0", NULL, NULL,
	};
	const struct queue_dsn_rcpt relayed = {
		"u@f.test", NULL, "2.0.0", "f.test", "250 2.0.0 taken",
	};
	struct queue_dsn dsn = {
		.action = QUEUE_DSN_DELIVERED,
		.reporting_mta = "mx.a.test",
		.sender = "alice@a.test",
		.now = 1700000000,
		.rcpts = &local,
		.nrcpts = 1,
		.original = orig,
		.original_len = strlen(orig),
		.boundary = "=_b",
		.message_id = "<d@x>",
	};
	size_t len;
	char *text;

	(void)state;
	text = queue_dsn_build(&dsn, &len);
	assert_non_null(strstr(text, "Subject: Successful Mail Delivery "
	    "Report\r\n"));
	assert_non_null(strstr(text, "\r\n<dave@a.test>\r\n\r\n"));
	assert_non_null(strstr(text, "Original-Recipient: rfc822;Dave@a.test"
	    "\r\nFinal-Recipient: rfc822; dave@a.test\r\nAction: delivered"
	    "\r\nStatus: 2.0.0\r\nLast-Attempt-Date: "));
	assert_non_null(strstr(text, "Content-Type: text/rfc822-headers\r\n"
	    "Content-Description: Message header\r\n\r\nSubject: hi\r\n"));
	assert_null(strstr(text, "Diagnostic-Code"));
	free(text);

	dsn.action = QUEUE_DSN_RELAYED;
	dsn.rcpts = &relayed;
	text = queue_dsn_build(&dsn, &len);
	assert_non_null(strstr(text, "Subject: Relayed Mail Delivery Report"
	    "\r\n"));
	assert_non_null(strstr(text, "Final-Recipient: rfc822; u@f.test\r\n"
	    "Action: relayed\r\nStatus: 2.0.0\r\nRemote-MTA: dns; f.test"
	    "\r\nDiagnostic-Code: smtp; 250 2.0.0 taken\r\n"));
	free(text);
}

static void
test_queue_dsn_notify_and_params(void **state)
{
	char buf[64];

	(void)state;
	assert_true(has_queue_notify(NULL, "FAILURE"));
	assert_true(has_queue_notify("ORCPT=rfc822;a@b", "DELAY"));
	assert_true(has_queue_notify("NOTIFY=SUCCESS,FAILURE", "FAILURE"));
	assert_false(has_queue_notify("NOTIFY=SUCCESS,FAILURE", "DELAY"));
	assert_false(has_queue_notify("NOTIFY=NEVER", "FAILURE"));
	/* RFC 3461 §4.1: success is reported only when asked for. */
	assert_false(has_queue_notify(NULL, "SUCCESS"));
	assert_false(has_queue_notify("ORCPT=rfc822;a@b", "SUCCESS"));
	assert_true(has_queue_notify("NOTIFY=DELAY,SUCCESS", "SUCCESS"));
	assert_false(has_queue_notify("NOTIFY=NEVER", "SUCCESS"));
	assert_true(has_queue_notify("ORCPT=rfc822;a@b notify=delay",
	    "DELAY"));
	assert_string_equal(queue_dsn_param("RET=HDRS ENVID=x1", "ENVID",
	    buf, sizeof(buf)), "x1");
	assert_string_equal(queue_dsn_param("RET=HDRS ENVID=x1", "ret",
	    buf, sizeof(buf)), "HDRS");
	assert_null(queue_dsn_param("RETX=1", "RET", buf, sizeof(buf)));
	assert_null(queue_dsn_param(NULL, "RET", buf, sizeof(buf)));
	/* Bounded by the caller's buffer. */
	assert_string_equal(queue_dsn_param("ENVID=0123456789", "ENVID", buf,
	    5), "0123");
}

/* Found by fuzz_dsn: a long remote reply made lines of over 998 octets
 * (RFC 5322 §2.1.1), in the notification and in Diagnostic-Code. */
static void
test_queue_dsn_long_reply_keeps_lines_short(void **state)
{
	char diag[1200], rc[500];
	struct queue_dsn_rcpt rcpt = { rc, NULL, "5.0.0", "mx.b.test", diag };
	const struct queue_dsn dsn = {
		.action = QUEUE_DSN_FAILED,
		.reporting_mta = "mx.a.test",
		.sender = "alice@a.test",
		.now = 1700000000,
		.rcpts = &rcpt,
		.nrcpts = 1,
		.boundary = "=_b",
		.message_id = "<d@x>",
	};
	size_t len, col = 0;
	char *text;

	(void)state;
	memset(diag, 'd', sizeof(diag) - 1);
	diag[sizeof(diag) - 1] = '\0';
	memset(rc, 'r', sizeof(rc) - 1);
	rc[sizeof(rc) - 1] = '\0';
	text = queue_dsn_build(&dsn, &len);
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\n') {
			assert_true(i > 0 && text[i - 1] == '\r');
			col = 0;
		} else {
			assert_true(++col <= 999);	/* 998 and the CR */
		}
	}
	assert_non_null(strstr(text, "Diagnostic-Code: smtp; dddd"));
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_dsn_failed_report_bytes),
		cmocka_unit_test(test_queue_dsn_delay_warning_and_hostile_text),
		cmocka_unit_test(test_queue_dsn_long_reply_keeps_lines_short),
		cmocka_unit_test(test_queue_dsn_notify_and_params),
		cmocka_unit_test(
		    test_queue_dsn_success_reports_delivered_and_relayed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
