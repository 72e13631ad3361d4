/* Keeps the gate's authorization table current (docs/redis.md, "Auth
 * changes"):
 *  - loaded whole from GET /internal/v1/authtable at start, after every
 *    (re)subscription to sluice:events (pub/sub loses what is sent meanwhile)
 *    and every authtable-refresh;
 *  - changed by the auth entries that sluice:events carries, in version order;
 *  - until a first load succeeds there is no table, and the gate refuses every
 *    handshake with 1503 (fail closed); /readyz says why. A later load that
 *    fails keeps the table in use and tries again.
 * After every change (an event, a full load) the connections that the new
 * table no longer admits (a new key, a new passphrase, deleted, disabled)
 * are disconnected: publishers and viewers (ingest_recheck). The stream.start
 * events of the same channel go to the viewers (viewer_stream_started).
 */
#ifndef SLUICE_INGEST_AUTHSYNC_H
#define SLUICE_INGEST_AUTHSYNC_H

#include <stdbool.h>

struct ingest;
struct authsync;

/* Starts loading and subscribing. NULL if out of memory. */
struct authsync *authsync_start(struct ingest *ing);
void authsync_free(struct authsync *a);

/* A full load now (another is queued if one is under way). */
void authsync_reload(struct authsync *a);

/* True once a table was loaded; <why> (if not NULL) gets "ok" or the reason. */
bool authsync_ready(const struct authsync *a, const char **why);

#endif
