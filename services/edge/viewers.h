/* Viewers per stream: the number of distinct clients that fetched something
 * of a stream in the last <window> (30 s by default), exactly, in bounded
 * memory. A client is an opaque byte string (the edge uses the client
 * address and User-Agent), kept only as a 64-bit keyed hash with the time it
 * was last seen, in one small open-addressing table per stream.
 *
 * Bounds: at most <max_clients> clients over all streams and <max_streams>
 * streams; past them new ones are not counted (and counted in
 * viewers_untracked()) until old ones leave the window.
 *
 * Each stream tracked has one gauge series in <family> (label "stream"),
 * updated by viewers_sweep() and removed with the stream.
 */
#ifndef SLUICE_EDGE_VIEWERS_H
#define SLUICE_EDGE_VIEWERS_H

#include <stddef.h>
#include <stdint.h>

struct metric;
struct viewers;

/* A tracker, or NULL. <family> may be NULL (no gauges). */
struct viewers *viewers_new(int64_t window_ms, size_t max_clients, size_t max_streams,
                            struct metric *family);
void viewers_free(struct viewers *v);

/* Records that <client> (<len> bytes) fetched part of <stream> at <now> (ms). */
void viewers_seen(struct viewers *v, const char *stream, const void *client, size_t len,
                  int64_t now);

/* Distinct clients of <stream> seen in the window ending at <now>. */
size_t viewers_count(struct viewers *v, const char *stream, int64_t now);

/* Forgets clients older than the window and streams left without any, and sets
 * each stream's gauge. */
void viewers_sweep(struct viewers *v, int64_t now);

size_t viewers_streams(const struct viewers *v);
size_t viewers_clients(const struct viewers *v);
uint64_t viewers_untracked(const struct viewers *v);

#endif
