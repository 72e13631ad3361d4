/* The origin directory (docs/architecture.md, "The origin directory"):
 *
 *   <dir>/origin.json              {"url": ..., "node": ..., "updated_at": ...}
 *   <dir>/live/<name>/index.m3u8   the live playlist
 *   <dir>/live/<name>/<seg>.ts     its recent segments
 *
 * Every file is written to a temporary name starting with '.' in the same
 * directory, then renamed over the real one, so that readers (discovery's
 * inotify, nginx, a person with ls) never see a partial file. Nothing is
 * fsync'd: the directory is a live mirror, rebuilt from the stream after a
 * crash. Writes are synchronous, on the loop: a segment is one write(2) of
 * what sits in memory already, into the page cache.
 */
#ifndef SLUICE_HLS_DISK_H
#define SLUICE_HLS_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct disk {
    char *dir;
    char err[256];            /* the last failure, "" when the last write went well */
    uint64_t errors;
    bool access_failed;       /* err says the directory cannot be written */
};

/* Makes <dir> and <dir>/live if needed, and removes what an earlier run left
 * in live/ (the files hls writes, and their directories). Returns 0, or -1
 * with a message in d->err. */
int disk_open(struct disk *d, const char *dir);
void disk_close(struct disk *d);

/* Writes <len> bytes as <dir>/live/<name>/<file>, atomically. Returns 0 or -1. */
int disk_write(struct disk *d, const char *name, const char *file, const void *buf, size_t len);

/* Removes <dir>/live/<name>/<file>; a missing file is fine. */
void disk_remove(struct disk *d, const char *name, const char *file);

/* Removes the stream's directory and the files hls writes in it. */
void disk_remove_stream(struct disk *d, const char *name);

/* Writes origin.json for <url> on node <node>. Returns 0 or -1. */
int disk_write_origin(struct disk *d, const char *url, const char *node, int64_t now_us);

/* True when origin.json is there. */
bool disk_has_origin(const struct disk *d);

/* True when the directory can be written (and the last write went well). */
bool disk_ok(struct disk *d);

#endif
