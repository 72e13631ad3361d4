/* The authorization table: everything the listen callback needs to decide a
 * connection from memory (docs/api.md, GET /internal/v1/authtable), as an
 * immutable, reference-counted snapshot.
 *
 * A table is never changed once built: a full load builds a new one, an event
 * from sluice:events builds a modified copy, and the holder swaps the pointer
 * (gate.h). So a reader on another thread (libsrt's receive thread) only has
 * to hold a reference while it looks; nothing it reads can change under it.
 *
 * Ordering (docs/redis.md): the table remembers the version V of its last full
 * load and each entry's version. An event for a stream is applied only if its
 * version is greater than the entry's (or than V for a stream not held); a
 * deleted stream stays as a tombstone with its version until the next full
 * load, so a late stream.created cannot bring it back. A full load keeps the
 * entries and tombstones of the previous table that are newer than its own V
 * (events that overtook the load's snapshot).
 *
 * Everything here is pure (no I/O, no clock, no globals) except the atomic
 * reference count, and is unit-tested and fuzzed.
 */
#ifndef SLUICE_INGEST_AUTHTABLE_H
#define SLUICE_INGEST_AUTHTABLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/names.h"
#include "streamid.h"

#define AUTH_PASSPHRASE_MAX 79     /* libsrt's bounds: 10 to 79 */
#define AUTH_PASSPHRASE_MIN 10

/* The SRT reject codes we answer with (libsrt's access_control.h values;
 * only 1000 and up can be set by an application). */
enum reject_code {
    REJ_NONE = 0,
    REJ_BAD_REQUEST = 1400,     /* malformed StreamID */
    REJ_UNAUTHORIZED = 1401,    /* bad key or session */
    REJ_OVERLOAD = 1402,        /* too many connections */
    REJ_FORBIDDEN = 1403,       /* stream disabled */
    REJ_NOT_FOUND = 1404,       /* no such stream */
    REJ_CONFLICT = 1409,        /* published here already, takeover off */
    REJ_INTERNAL = 1500,        /* out of memory */
    REJ_UNIMPLEMENTED = 1501,   /* m=request, until playback exists */
    REJ_DOWN = 1503,            /* no authorization table yet: fail closed */
};

/* "bad_request", ... for logs and metrics; NULL for other codes. */
const char *reject_name(int code);

struct auth_entry {
    char name[STREAM_NAME_MAX + 1];
    uint8_t key_sha256[32];
    char passphrase[AUTH_PASSPHRASE_MAX + 1];   /* "" when the stream has none */
    bool disabled;
    bool deleted;                               /* a tombstone */
    int64_t version;
};

struct authtable;

/* Builds a table from the body of GET /internal/v1/authtable. Entries that
 * break the contract (bad name, key hash, passphrase, version, a duplicate
 * name) are skipped and counted in *<skipped>. NULL with a printable reason
 * in <err> when <doc> is not such a body at all, or out of memory. The table
 * starts with one reference. */
struct authtable *authtable_from_json(const json_t *doc, size_t *skipped, char *err,
                                      size_t errlen);

/* The table to use after a full load: <loaded> (its reference is taken over)
 * plus whatever <current> (may be NULL; not consumed) holds that is newer than
 * <loaded>'s version. NULL if out of memory (<loaded> is then released). */
struct authtable *authtable_merge(struct authtable *loaded, const struct authtable *current);

enum auth_event_kind { AEK_CREATED, AEK_UPDATED, AEK_KEY_ROTATED, AEK_DELETED };

enum auth_event_result {
    AE_APPLIED,     /* *out is the new table (one reference) */
    AE_STALE,       /* not newer than what the table holds: nothing to do */
    AE_IGNORED,     /* an event of another type (stream.start, ...) */
    AE_BAD,         /* an auth event that breaks the contract */
    AE_NOMEM,
};

struct auth_event {
    enum auth_event_kind kind;
    char stream[STREAM_NAME_MAX + 1];
    int64_t version;
    bool key_changed;          /* the stream's key is not what it was (or it is gone) */
};

/* Applies the event <msg> (one sluice:events message, parsed) to <cur> (not
 * consumed). For an auth event fills <ev> (for AE_APPLIED and AE_STALE). */
enum auth_event_result authtable_apply_event(const struct authtable *cur, const json_t *msg,
                                             struct authtable **out, struct auth_event *ev);

/* References; unref frees at zero. Both accept NULL. Thread-safe. */
struct authtable *authtable_ref(struct authtable *t);
void authtable_unref(struct authtable *t);

int64_t authtable_version(const struct authtable *t);    /* of the last full load */
int64_t authtable_max_version(const struct authtable *t);/* the newest change held */
size_t authtable_size(const struct authtable *t);        /* live entries */

/* The entry named <name> (a tombstone included), or NULL. */
const struct auth_entry *authtable_find(const struct authtable *t, const char *name);

/* Why a connection admitted when its stream's entry was <then> must go now
 * that the table holds <now> for it (NULL: none): a static reason ("the
 * stream key changed", ...), or NULL if it may stay. Deleted, disabled, a
 * new key, a new passphrase: each revokes. Pure. */
const char *authtable_revokes(const struct auth_entry *then, const struct auth_entry *now);

struct auth_decision {
    int code;                /* REJ_NONE when allowed */
    bool session;            /* allowed pending the api: the credential is a session id */
    const char *why;         /* static, for logs */
    const char *passphrase;  /* the stream's, or NULL; points into <t> */
};

/* Decides <sid> against <t> (NULL: no table yet, fail closed with REJ_DOWN):
 * no such stream or a tombstone 1404; a credential that is neither a key nor
 * a session id, or a key whose SHA-256 differs (compared in constant time),
 * 1401; a disabled stream 1403; a well-formed session id is allowed pending
 * the api. The mode is not judged here. Fills <d> and returns d->code. */
int authtable_decide(const struct authtable *t, const struct streamid *sid,
                     struct auth_decision *d);

#endif
