/* The authtable in memory: every stream's auth entry (the object of GET
 * /internal/v1/authtable and of the auth events: name, key_sha256,
 * passphrase, disabled, version), found by name or by key hash, so that
 * /internal/v1/authorize decides without a query. Pure: no I/O, event-loop
 * only (authsync.c keeps it current and says when it can be trusted).
 *
 * It follows the ordering rules of docs/redis.md, as ingest's table does:
 * a change applies only if its version is greater than that of the entry held
 * for its stream, or, for a stream not held, than the version of the last
 * snapshot; a deletion is kept as a tombstone with its version, so a late
 * event cannot bring the stream back; a snapshot replaces the table but keeps
 * what is newer than itself (changes that arrived while it was read). A key
 * belongs to one stream: a change giving a stream the key another stream
 * holds turns that other stream into a tombstone (refused until a newer change
 * or snapshot), which a correct database never causes.
 */
#ifndef SLUICE_API_AUTHCACHE_H
#define SLUICE_API_AUTHCACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct authcache;

/* Constructor: an empty table at version 0. NULL when out of memory. */
struct authcache *authcache_new(void);
void authcache_free(struct authcache *t);

/* Replaces the table with a snapshot: <entries>, an array of auth entries, as
 * of authtable version <version>. Entries and tombstones of a version greater
 * than <version> stay. Returns 0, or -1 (table unchanged) when an entry is
 * malformed or memory runs out. */
int authcache_load(struct authcache *t, int64_t version, const json_t *entries);

/* Applies a change of stream <name> at <version>: <entry> its new auth entry,
 * or NULL for a deletion. Returns 1 if applied, 0 if older than what is known,
 * -1 when <entry> is malformed or memory runs out. */
int authcache_apply(struct authcache *t, const char *name, int64_t version,
                    const json_t *entry);

/* The entry of a live stream (borrowed; valid until the next change), or
 * NULL: by name, or by the lower-case hex SHA-256 of a key. */
const json_t *authcache_by_name(const struct authcache *t, const char *name);
const json_t *authcache_by_key(const struct authcache *t, const char *key_sha256);

/* Streams held (tombstones not counted), and the last snapshot's version. */
size_t authcache_size(const struct authcache *t);
int64_t authcache_version(const struct authcache *t);

/* True if <entry> has the shape of an auth entry. */
bool authcache_entry_valid(const json_t *entry);

/* True if the two indexes agree (every live entry is found by its key, every
 * key finds a live entry of its own, the count is right). For tests. */
bool authcache_consistent(const struct authcache *t);

#endif
