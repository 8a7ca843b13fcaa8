/*
 * log: one line per event, as key=value pairs. The logger adds the time,
 * the level and the session id; the caller passes the event name first and
 * then its pairs: log_info(s->sid, "smtp.rcpt to=<%s> result=accepted", a).
 * Lines go to stderr and, when configured, to syslog. Thread-safe: each
 * line is written with one write(2). The level and the syslog switch are
 * process-wide, set from the configuration by main and on reload.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_TRACE,
};

/* Sets the level and whether lines also go to syslog. */
void log_configure(enum log_level level, bool use_syslog);

/* Returns 0 and sets *out, or -1 if name is not a level name. */
int log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);

bool is_log_enabled(enum log_level level);

/* sid may be NULL for events of the whole process. */
void log_write(enum log_level level, const char *sid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(sid, ...) log_write(LOG_LEVEL_ERROR, sid, __VA_ARGS__)
#define log_warn(sid, ...) log_write(LOG_LEVEL_WARN, sid, __VA_ARGS__)
#define log_info(sid, ...) log_write(LOG_LEVEL_INFO, sid, __VA_ARGS__)
#define log_debug(sid, ...) log_write(LOG_LEVEL_DEBUG, sid, __VA_ARGS__)
#define log_trace(sid, ...) log_write(LOG_LEVEL_TRACE, sid, __VA_ARGS__)

#endif
