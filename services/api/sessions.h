/* Single-use session ids: "ss_…" kept in Redis as sluice:session:<id> with a
 * TTL (session-ttl, 5 minutes by default), consumed with GETDEL so that
 * exactly one use succeeds. The value:
 *
 *   {"stream": "cam1", "mode": "publish" | "request", "user": 7,
 *    "created_at": "2026-01-01T10:00:00.000Z"}
 */
#ifndef SLUICE_API_SESSIONS_H
#define SLUICE_API_SESSIONS_H

#include <stddef.h>

#include "requests.h"

#define SESSION_KEY_PREFIX "sluice:session:"

struct session {
    char stream[65];
    enum mode mode;
};

/* Parses a stored session value. Pure. Returns 0 or -1. */
int session_parse(const char *value, size_t len, struct session *out);

#endif
