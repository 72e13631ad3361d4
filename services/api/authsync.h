/* What authentication decides from, kept in memory and current through
 * sluice:events, with the rules for when it can be trusted: the authtable
 * (authcache.h), so that POST /internal/v1/authorize decides without a query,
 * and the users bearer tokens name, so that an authenticated call does not
 * read its caller from PostgreSQL every time. Neither is ever used when it
 * could be stale without knowing it.
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
 * -1 (logged). With auth-cache off, does nothing: every decision and every
 * caller comes from PostgreSQL. */
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

/* Users. A user's name and role are cached as PostgreSQL returned them, and
 * forgotten on user.deleted (docs/redis.md), which the process deleting a user
 * publishes before it answers, and on every (re)subscription. Trusted under
 * the same rules as the authtable. A change to a user's role (there is no such
 * call yet) would have to publish an event too.
 *
 * authsync_user: true, filling <name> and <role>, if user <id> is known and
 * the cache is trusted. authsync_user_epoch: taken before reading a user from
 * PostgreSQL; authsync_user_loaded then keeps the row only if no user was
 * forgotten meanwhile (a deletion may have raced the read).
 * authsync_user_deleted: a user this process deleted, forgotten before the
 * answer. */
bool authsync_user(const struct api *api, int64_t id, char *name, size_t namelen,
                   char *role, size_t rolelen);
unsigned authsync_user_epoch(const struct api *api);
void authsync_user_loaded(struct api *api, unsigned epoch, int64_t id, const char *name,
                          const char *role);
void authsync_user_deleted(struct api *api, int64_t id);

#endif
