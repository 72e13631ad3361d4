/* The relay's live stream records, sluice:stream:<name> (docs/redis.md), as
 * the api reads them: for GET /v1/live (live.c) and for the live state of
 * GET /v1/streams (streams.c). One parser, fuzzed (fuzz_liverec), and one
 * way to turn a record into API fields, so the two answers cannot drift. */
#ifndef SLUICE_API_LIVEREC_H
#define SLUICE_API_LIVEREC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "sluice/names.h"
#include "sluice/redis.h"

#define LIVEREC_KEY_PREFIX "sluice:stream:"
/* A record's key, terminated. */
#define LIVEREC_KEY_MAX (sizeof(LIVEREC_KEY_PREFIX) + STREAM_NAME_MAX)
#define LIVEREC_FIELD_MAX 256   /* bytes of a field taken from a record */

/* The value <text> of <len> bytes of sluice:stream:<name> as a record: a new
 * reference to a JSON object whose "name" is <name>; or NULL, with why in
 * <err> (<errlen> bytes, may be 0). Pure: no I/O, no log. */
json_t *liverec_parse(const char *name, const char *text, size_t len, char *err,
                      size_t errlen);

/* Element <i> of an MGET reply of records, for <name>: a new reference to the
 * record, or NULL when there is none (nil: not live, or expired) or it is not
 * a record (logged, and treated as none). */
json_t *liverec_from_reply(const struct redis_reply *mget, size_t i, const char *name);

/* The record's started_at when it is an RFC 3339 time, else NULL. Borrowed
 * from <rec>. */
const char *liverec_started_at(const json_t *rec);

/* Sets on <out> the record's operational fields (protocol, client, ingest,
 * relay, relay_id, publisher), each a printable string of at most
 * LIVEREC_FIELD_MAX bytes, or null. Returns 0, or -1 when out of memory (<out>
 * may have some of them). */
int liverec_set_ops(json_t *out, const json_t *rec);

/* Sends MGET of the records of the <n> (1 or more) stream names <names>; <cb>
 * gets an array of <n> replies, in order (read them with liverec_from_reply).
 * Returns 0, or -1 (Redis down, too many pending, or memory: <cb> is not
 * called). */
int liverec_mget(struct redis *r, const char *const *names, size_t n, redis_reply_cb cb,
                 void *arg);

#endif
