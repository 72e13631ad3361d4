/* sluice-discovery: keeps the Redis origin map fresh for the streams an hls
 * origin packages on this node.
 *
 * It watches the origin directory with inotify (watch.c): the directory
 * itself (origin.json, live/), live/ (stream directories coming and going)
 * and each live/<name>/ (its index.m3u8 being replaced). Each replacement
 * refreshes sluice:origin:<name> with a short TTL (publish.c); when hls stops
 * writing, the key expires by itself. It rescans everything on start, after
 * Redis comes back, after an inotify queue overflow, and when origin.json
 * changes; and retries every <retry> while the directory cannot be watched.
 */
#ifndef SLUICE_DISCOVERY_H
#define SLUICE_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "originjson.h"
#include "sluice/names.h"

struct daemon;
struct redis;
struct event;
struct metric;
struct metric_series;

struct discovery_config {
    char *admin_listen;
    char *dir;
    int64_t ttl_ms;
    int64_t retry_ms;
    int64_t redis_timeout_ms;
};

/* One live/<name>/ directory being watched. */
struct stream_dir {
    char name[STREAM_NAME_MAX + 1];
    int wd;
    int64_t last_sent_ms;        /* monotonic: the last refresh sent */
    int64_t last_ok_ms;          /* monotonic: the last refresh Redis took */
    int64_t deferred_wall_us;    /* a refresh held back by the rate bound, or 0 */
};

enum rescan_reason { RS_START, RS_REDIS, RS_OVERFLOW, RS_ORIGIN, RS_RETRY, RS_COUNT };
enum disc_error { DE_REDIS, DE_ORIGIN, DE_WATCH, DE_INVALID_NAME, DE_COUNT };

struct discovery {
    struct daemon *d;
    const struct discovery_config *cfg;
    struct redis *redis;
    int ifd;                     /* inotify descriptor */
    struct event *iev, *retry;
    struct event *flush;         /* sends the refreshes the rate bound held back */
    int root_wd, live_wd;        /* -1 when not watched */
    struct stream_dir *streams;  /* a small array: one origin's streams */
    size_t nstreams, capstreams;
    struct origin_info origin;
    bool origin_ok;
    char origin_err[256];        /* why not, for /readyz */
    char dir_err[256];           /* "" when the directory is watched */
    char watch_err[256];         /* "" unless a stream could not be watched */
    char **invalid;              /* names already logged as invalid (bounded) */
    size_t ninvalid;
    struct metric *m_errors, *m_rescans;
    struct metric_series *streams_gauge, *active_gauge, *seen, *refreshes;
    struct metric_series *errors[DE_COUNT], *rescans[RS_COUNT];
};

/* watch.c */
int watch_start(struct discovery *ds);
void watch_stop(struct discovery *ds);
/* Rescans the directory (watches what is new, refreshes recent playlists). */
void watch_rescan(struct discovery *ds, enum rescan_reason why);
/* Streams whose last refresh Redis took less than a TTL ago. */
size_t watch_active(const struct discovery *ds);

/* publish.c */
int publish_start(struct discovery *ds);
void publish_stop(struct discovery *ds);
/* Refreshes sluice:origin:<name> for a playlist written at <written_wall_us>
 * (age <age_ms>). At most one write per stream per TTL/10: a replacement
 * sooner than that is sent when that time is up. */
void publish_refresh(struct discovery *ds, struct stream_dir *s, int64_t written_wall_us,
                     int64_t age_ms);

#endif
