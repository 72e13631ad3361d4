/* Logging: one line per event, to stderr (or a file reopened on SIGHUP).
 *
 * Lines are text ("2026-11-21T10:00:00.123Z relay info: msg") or JSON objects
 * ({"ts":..,"level":..,"daemon":..,"msg":..}), chosen by SLUICE_LOG_FORMAT.
 * The level check happens before any formatting, so a disabled debug line
 * costs one comparison. Safe to call from any thread: each line is formatted
 * into a local buffer and written with one write(2).
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOGL_DEBUG, LOGL_INFO, LOGL_WARN, LOGL_ERROR };
enum log_format { LOG_TEXT, LOG_JSON };

extern enum log_level log_min_level;

/* Sets the daemon name shown on every line, the level, the format, and the
 * file to log to (NULL or "" for stderr). Returns 0, or -1 if <path> cannot be
 * opened (logging then stays on stderr). */
int log_init(const char *daemon, enum log_level level, enum log_format format,
             const char *path);

/* Reopens the log file after rotation (SIGHUP). A no-op on stderr. */
void log_reopen(void);

/* Closes the log file, if any. */
void log_close(void);

/* Parses "debug|info|warn|error" and "text|json". Return 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
int log_format_parse(const char *s, enum log_format *out);

void log_write(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_at(lvl, ...) \
    do { if ((lvl) >= log_min_level) log_write((lvl), __VA_ARGS__); } while (0)
#define log_debug(...) log_at(LOGL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_at(LOGL_INFO, __VA_ARGS__)
#define log_warn(...)  log_at(LOGL_WARN, __VA_ARGS__)
#define log_error(...) log_at(LOGL_ERROR, __VA_ARGS__)

/* Copies <len> bytes of <src> (from a peer, untrusted) into <dst> as printable
 * ASCII: other bytes, quotes and backslashes become \xNN, and the copy is cut
 * with "..." when <dst> (of <dstlen> bytes, at least 8) is full. Always
 * NUL-terminates. Returns <dst>, so it can go straight into a log call. */
char *log_escape(char *dst, size_t dstlen, const void *src, size_t len);

#endif
