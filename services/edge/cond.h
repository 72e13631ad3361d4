/* Conditional and partial requests against a cached body: the Range,
 * If-Range and If-None-Match request headers (RFC 9110 13.1.2, 13.1.5, 14.2).
 * Pure functions over header values, which come from viewers.
 *
 * One range of bytes is served; several ranges, other units and malformed
 * values are ignored (the whole body is served, which the RFC allows).
 */
#ifndef SLUICE_EDGE_COND_H
#define SLUICE_EDGE_COND_H

#include <stdbool.h>
#include <stdint.h>

enum range_result {
    RANGE_NONE,            /* serve the whole body (200) */
    RANGE_OK,              /* serve [*off, *off + *len) (206) */
    RANGE_UNSATISFIABLE,   /* 416, with Content-Range: bytes * / size */
};

/* Interprets the Range value <value> (may be NULL) for a body of <size> bytes. */
enum range_result range_parse(const char *value, uint64_t size, uint64_t *off,
                              uint64_t *len);

/* True if the If-None-Match value <list> ("*", or entity tags separated by
 * commas) matches <etag> by the weak comparison. False for an empty <etag>. */
bool etag_list_match(const char *list, const char *etag);

/* True if a Range may be honoured given the If-Range value <if_range> (may be
 * NULL): absent, or the strong <etag>, or exactly <last_modified>. */
bool if_range_allows(const char *if_range, const char *etag, const char *last_modified);

#endif
