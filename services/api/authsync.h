/* Keeping the in-memory authtable (authcache.h) current, and saying when it
 * can be trusted, so that POST /internal/v1/authorize decides without a
 * query while never deciding on stale data it could know to be stale.
 *
 * The table is what ingest keeps too, and kept the same way (docs/redis.md):
 * it subscribes to sluice:events, loads the whole table from PostgreSQL after
 * every (re)subscription and every auth-reload (a missed PUBLISH is caught
 * there), and applies the auth events (stream.created, stream.updated,
 * key.rotated, stream.deleted) in version order. Changes this process makes
 * are applied from the rows they returned before the reply goes out, so on one
 * replica a rotated key is refused from the moment the rotation is answered;
 * other replicas apply its event as soon as it arrives.
 *
 * Trusted only while Redis is up and the table was loaded after the latest
 * subscription: before the first load, while Redis is down or the subscriber
 * reconnects (events may be lost), authorize asks PostgreSQL, as it would
 * with auth-cache off.
 */
#ifndef SLUICE_API_AUTHSYNC_H
#define SLUICE_API_AUTHSYNC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct api;
struct authcache;

/* Subscribes and starts loading (api->redis and api->db exist). Returns 0 or
 * -1 (logged). With auth-cache off, does nothing. */
int authsync_start(struct api *api);

/* Before db_free (a load in flight is finished off by its callback). */
void authsync_free(struct api *api);

/* The table if it can be trusted now, else NULL (ask PostgreSQL). */
const struct authcache *authsync_table(const struct api *api);

/* A change this process committed: stream <name> at authtable <version>, its
 * new auth entry <auth> (borrowed) or NULL when deleted. */
void authsync_changed(struct api *api, const char *name, int64_t version,
                      const json_t *auth);

/* Redis's command connection went up or down (api.c's state callback). */
void authsync_redis_state(struct api *api, bool up);

#endif
