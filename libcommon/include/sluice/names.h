/* The stream-name grammar of DESIGN.md: [A-Za-z0-9_-]{1,64}, one path segment,
 * the same in SRT r=, RTMP publish names, HLS paths and Redis keys. Every daemon
 * validates names with these, and nothing else. */
#ifndef SLUICE_NAMES_H
#define SLUICE_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define STREAM_NAME_MAX 64

/* True if the <len> bytes at <s> are a valid stream name. */
bool stream_name_validn(const char *s, size_t len);

/* True if the NUL-terminated <s> is a valid stream name (false for NULL). */
bool stream_name_valid(const char *s);

#endif
