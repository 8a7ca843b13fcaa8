#include "lib/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* Process-wide by nature: every thread logs through the same settings. */
static atomic_int log_level_now = LOG_LEVEL_INFO;
static atomic_bool log_to_syslog = false;

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_TRACE] = "trace",
};

void
log_configure(enum log_level level, bool use_syslog)
{
	if (use_syslog && !atomic_load(&log_to_syslog))
		openlog("postern", LOG_PID | LOG_NDELAY, LOG_MAIL);
	atomic_store(&log_level_now, (int)level);
	atomic_store(&log_to_syslog, use_syslog);
}

int
log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(*level_names);
	    i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *
log_level_name(enum log_level level)
{
	return level_names[level];
}

bool
is_log_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&log_level_now);
}

void
log_write(enum log_level level, const char *sid, const char *fmt, ...)
{
	static const int syslog_prio[] = {
		LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG, LOG_DEBUG,
	};
	char line[2048], stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int head, body;

	if (!is_log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	head = snprintf(line, sizeof(line), "%s.%03ldZ level=%s sid=%s event=",
	    stamp, ts.tv_nsec / 1000000, level_names[level],
	    sid ? sid : "-");
	va_start(ap, fmt);
	body = vsnprintf(line + head, sizeof(line) - (size_t)head - 1, fmt,
	    ap);
	va_end(ap);
	size_t len = (size_t)head + (body < 0 ? 0 : (size_t)body);

	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	/* Control characters from the network never reach the log raw. */
	for (size_t i = (size_t)head; i < len; i++) {
		if ((unsigned char)line[i] < 0x20)
			line[i] = '?';
	}
	line[len] = '\n';
	if (write(STDERR_FILENO, line, len + 1) < 0) {
		/* Nowhere left to report a failing stderr. */
	}
	if (atomic_load(&log_to_syslog)) {
		line[len] = '\0';
		/* syslog adds its own time stamp. */
		syslog(syslog_prio[level], "%s", strchr(line, ' ') + 1);
	}
}
