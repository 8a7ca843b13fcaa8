/*
 * imap_date: the date forms of IMAP (RFC 9051 §9 date and date-time).
 * INTERNALDATE goes out in UTC; dates in SEARCH are days, taken as UTC.
 */
#include "imap/imap_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char months[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

void
imap_date_time_format(int64_t t, char out[IMAP_DATE_TIME_LEN])
{
	time_t tt = (time_t)t;
	struct tm tm;

	char buf[64];

	if (gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 > 9999 ||
	    tm.tm_year + 1900 < 0) {
		tt = 0;
		gmtime_r(&tt, &tm);
	}
	snprintf(buf, sizeof(buf), "%02d-%s-%04d %02d:%02d:%02d +0000",
	    tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
	memcpy(out, buf, IMAP_DATE_TIME_LEN - 1);
	out[IMAP_DATE_TIME_LEN - 1] = '\0';
}

/* Reads "d-Mon-yyyy" or "dd-Mon-yyyy" (with a leading space for the
 * date-time's day, when is_spaced); returns the bytes read, or 0. */
static size_t
date_read(const char *s, bool is_spaced, struct tm *tm)
{
	const char *p = s;
	int day = 0, year = 0, mon = -1;

	if (is_spaced && *p == ' ')
		p++;
	if (!isdigit((unsigned char)*p))
		return 0;
	day = *p++ - '0';
	if (isdigit((unsigned char)*p))
		day = day * 10 + (*p++ - '0');
	if (*p++ != '-')
		return 0;
	for (int i = 0; i < 12; i++) {
		if (strncasecmp(p, months[i], 3) == 0)
			mon = i;
	}
	if (mon < 0 || p[3] != '-')
		return 0;
	p += 4;
	for (int i = 0; i < 4; i++) {
		if (!isdigit((unsigned char)p[i]))
			return 0;
		year = year * 10 + (p[i] - '0');
	}
	p += 4;
	if (day < 1 || day > 31 || year < 1900)
		return 0;
	memset(tm, 0, sizeof(*tm));
	tm->tm_mday = day;
	tm->tm_mon = mon;
	tm->tm_year = year - 1900;
	return (size_t)(p - s);
}

bool
imap_date_parse(const char *str, int64_t *t_out)
{
	struct tm tm;
	size_t n = date_read(str, false, &tm);

	if (n == 0 || str[n] != '\0')
		return false;
	*t_out = (int64_t)timegm(&tm);
	return true;
}

bool
imap_date_time_parse(const char *str, int64_t *t_out)
{
	struct tm tm;
	size_t n = date_read(str, true, &tm);
	const char *p = str + n;
	int hh, mm, ss, zone, sign;

	if (n == 0 || strlen(p) != 15 || p[0] != ' ' || p[3] != ':' ||
	    p[6] != ':' || p[9] != ' ' || (p[10] != '+' && p[10] != '-'))
		return false;
	for (int i = 1; i < 15; i++) {
		if (i != 3 && i != 6 && i != 9 && i != 10 &&
		    !isdigit((unsigned char)p[i]))
			return false;
	}
	hh = (p[1] - '0') * 10 + (p[2] - '0');
	mm = (p[4] - '0') * 10 + (p[5] - '0');
	ss = (p[7] - '0') * 10 + (p[8] - '0');
	sign = p[10] == '-' ? -1 : 1;
	zone = ((p[11] - '0') * 10 + (p[12] - '0')) * 60 +
	    (p[13] - '0') * 10 + (p[14] - '0');
	if (hh > 23 || mm > 59 || ss > 60)
		return false;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*t_out = (int64_t)timegm(&tm) - sign * zone * 60;
	return true;
}
