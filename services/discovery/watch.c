/* The origin directory under inotify: see discovery.h.
 *
 * Three kinds of watch: the directory itself (origin.json, live/), live/
 * (stream directories appearing and disappearing) and one per live/<name>/
 * (index.m3u8 replaced). A watch is added on a new directory before it is
 * scanned, so that nothing written in between is missed; the scan reads
 * index.m3u8's mtime and refreshes only playlists younger than the TTL.
 */
#include "discovery.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/log.h"
#include "sluice/metrics.h"

#define MAX_INVALID_LOGGED 256
#define ROOT_MASK (IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | \
                   IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define LIVE_MASK (IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | \
                   IN_MOVE_SELF | IN_ONLYDIR)
#define STREAM_MASK (IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

static const char *const rescan_names[RS_COUNT] = {
    "start", "redis", "overflow", "origin", "retry",
};

/* ---- paths ---------------------------------------------------------------- */

static int path_of(const struct discovery *ds, char *out, size_t len, const char *a,
                   const char *b)
{
    int n = snprintf(out, len, "%s%s%s%s%s", ds->cfg->dir, a ? "/" : "", a ? a : "",
                     b ? "/" : "", b ? b : "");
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* ---- origin.json ---------------------------------------------------------- */

/* <missing>: hls has not written it yet (normal at boot), rather than written
 * something wrong. */
static void origin_failed(struct discovery *ds, const char *why, bool missing)
{
    if (!ds->origin_ok && strcmp(ds->origin_err, why) == 0)
        return;   /* said already */
    snprintf(ds->origin_err, sizeof(ds->origin_err), "%s", why);
    ds->origin_ok = false;
    metric_add(ds->errors[DE_ORIGIN], 1);
    log_at(missing ? LOGL_WARN : LOGL_ERROR,
           "%s/origin.json: %s; streams are not advertised until it is fixed",
           ds->cfg->dir, why);
}

/* Reads origin.json. Returns true when the URL changed (or became known). */
static bool load_origin(struct discovery *ds)
{
    char path[PATH_MAX], buf[ORIGIN_JSON_MAX + 1], why[200];
    if (path_of(ds, path, sizeof(path), "origin.json", NULL) == -1) {
        origin_failed(ds, "path too long", false);
        return false;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd == -1) {
        bool missing = errno == ENOENT;
        snprintf(why, sizeof(why), "cannot open: %s", strerror(errno));
        origin_failed(ds, why, missing);
        return false;
    }
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) > 0)
        len += (size_t)n;
    close(fd);
    struct origin_info info;
    if (origin_json_parse(buf, len, &info, why, sizeof(why)) == -1) {
        origin_failed(ds, why, false);
        return false;
    }
    bool changed = !ds->origin_ok || strcmp(info.url, ds->origin.url) != 0;
    if (changed)
        log_info("origin %s%s%s%s", info.url, info.node[0] ? " (node " : "", info.node,
                 info.node[0] ? ")" : "");
    ds->origin = info;
    ds->origin_ok = true;
    ds->origin_err[0] = '\0';
    return changed;
}

/* ---- stream directories ---------------------------------------------------- */

/* Logs an invalid directory name once (up to a bound). */
static void invalid_name(struct discovery *ds, const char *name)
{
    for (size_t i = 0; i < ds->ninvalid; i++) {
        if (strcmp(ds->invalid[i], name) == 0)
            return;
    }
    metric_add(ds->errors[DE_INVALID_NAME], 1);
    char safe[96];
    if (ds->ninvalid == MAX_INVALID_LOGGED)
        return;
    log_warn("live/%s: not a valid stream name, ignored",
             log_escape(safe, sizeof(safe), name, strlen(name)));
    char **grown = realloc(ds->invalid, (ds->ninvalid + 1) * sizeof(*grown));
    if (grown == NULL)
        return;
    ds->invalid = grown;
    if ((ds->invalid[ds->ninvalid] = strdup(name)) != NULL)
        ds->ninvalid++;
}

static struct stream_dir *stream_by_wd(struct discovery *ds, int wd)
{
    for (size_t i = 0; i < ds->nstreams; i++) {
        if (ds->streams[i].wd == wd)
            return &ds->streams[i];
    }
    return NULL;
}

static struct stream_dir *stream_by_name(struct discovery *ds, const char *name)
{
    for (size_t i = 0; i < ds->nstreams; i++) {
        if (strcmp(ds->streams[i].name, name) == 0)
            return &ds->streams[i];
    }
    return NULL;
}

static void stream_forget(struct discovery *ds, struct stream_dir *s)
{
    log_debug("live/%s: no longer watched", s->name);
    *s = ds->streams[--ds->nstreams];
    metric_set(ds->streams_gauge, (double)ds->nstreams);
}

/* Refreshes <s> if its playlist exists and is younger than the TTL. */
static void check_playlist(struct discovery *ds, struct stream_dir *s)
{
    char path[PATH_MAX];
    struct stat st;
    if (path_of(ds, path, sizeof(path), "live", s->name) == -1 ||
        strlen(path) + sizeof("/index.m3u8") > sizeof(path))
        return;
    strcat(path, "/index.m3u8");
    if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
        return;
    int64_t written = (int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
    int64_t age_ms = (clock_wall_us() - written) / 1000;
    publish_refresh(ds, s, written, age_ms < 0 ? 0 : age_ms);
}

/* Watches live/<name>/ (if not yet) and returns it, or NULL. */
static struct stream_dir *stream_watch(struct discovery *ds, const char *name)
{
    if (!stream_name_valid(name)) {
        invalid_name(ds, name);
        return NULL;
    }
    struct stream_dir *s = stream_by_name(ds, name);
    if (s != NULL)
        return s;
    char path[PATH_MAX];
    if (path_of(ds, path, sizeof(path), "live", name) == -1)
        return NULL;
    int wd = inotify_add_watch(ds->ifd, path, STREAM_MASK);
    if (wd == -1) {
        if (errno == ENOSPC || errno == ENOMEM) {
            snprintf(ds->watch_err, sizeof(ds->watch_err),
                     "cannot watch live/%s: %s (raise fs.inotify.max_user_watches)", name,
                     strerror(errno));
            log_error("%s", ds->watch_err);
            metric_add(ds->errors[DE_WATCH], 1);
        }
        return NULL;   /* ENOENT, ENOTDIR: gone already, or not a directory */
    }
    if ((s = stream_by_wd(ds, wd)) != NULL) {   /* the same inode under a new name */
        snprintf(s->name, sizeof(s->name), "%s", name);
        return s;
    }
    if (ds->nstreams == ds->capstreams) {
        size_t cap = ds->capstreams ? ds->capstreams * 2 : 16;
        struct stream_dir *grown = realloc(ds->streams, cap * sizeof(*grown));
        if (grown == NULL) {
            inotify_rm_watch(ds->ifd, wd);
            return NULL;
        }
        ds->streams = grown;
        ds->capstreams = cap;
    }
    s = &ds->streams[ds->nstreams++];
    *s = (struct stream_dir){ .wd = wd };
    snprintf(s->name, sizeof(s->name), "%s", name);
    metric_add(ds->seen, 1);
    metric_set(ds->streams_gauge, (double)ds->nstreams);
    log_info("live/%s: watching", name);
    return s;
}

static void streams_forget_all(struct discovery *ds)
{
    for (size_t i = 0; i < ds->nstreams; i++)
        inotify_rm_watch(ds->ifd, ds->streams[i].wd);
    ds->nstreams = 0;
    metric_set(ds->streams_gauge, 0);
}

/* Scans live/ for stream directories and refreshes recent playlists. */
static void scan_live(struct discovery *ds)
{
    char path[PATH_MAX];
    if (path_of(ds, path, sizeof(path), "live", NULL) == -1)
        return;
    DIR *dir = opendir(path);
    if (dir == NULL)
        return;   /* no live/ yet: the root watch sees it come */
    ds->watch_err[0] = '\0';
    for (struct dirent *de; (de = readdir(dir)) != NULL;) {
        if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
            continue;
        struct stream_dir *s = stream_watch(ds, de->d_name);
        if (s != NULL)
            check_playlist(ds, s);
    }
    closedir(dir);
}

static void watch_live(struct discovery *ds)
{
    char path[PATH_MAX];
    if (ds->live_wd != -1 || path_of(ds, path, sizeof(path), "live", NULL) == -1)
        return;
    ds->live_wd = inotify_add_watch(ds->ifd, path, LIVE_MASK);
    if (ds->live_wd == -1 && errno != ENOENT && errno != ENOTDIR)
        log_warn("cannot watch %s: %s", path, strerror(errno));
}

/* Watches the directory itself. Returns 0, or -1 (the reason in dir_err). */
static int watch_root(struct discovery *ds)
{
    if (ds->root_wd != -1)
        return 0;
    ds->root_wd = inotify_add_watch(ds->ifd, ds->cfg->dir, ROOT_MASK);
    if (ds->root_wd == -1) {
        char why[sizeof(ds->dir_err)];
        snprintf(why, sizeof(why), "cannot watch %s: %s", ds->cfg->dir, strerror(errno));
        if (strcmp(why, ds->dir_err) != 0) {
            log_error("%s; retrying every %lld ms", why, (long long)ds->cfg->retry_ms);
            metric_add(ds->errors[DE_WATCH], 1);
        }
        memcpy(ds->dir_err, why, sizeof(why));
        return -1;
    }
    if (ds->dir_err[0])
        log_info("watching %s", ds->cfg->dir);
    ds->dir_err[0] = '\0';
    return 0;
}

static void schedule_retry(struct discovery *ds)
{
    if (!evtimer_pending(ds->retry, NULL) && !daemon_stopping(ds->d)) {
        struct timeval tv = clock_tv_ms(ds->cfg->retry_ms);
        evtimer_add(ds->retry, &tv);
    }
}

void watch_rescan(struct discovery *ds, enum rescan_reason why)
{
    metric_add(ds->rescans[why], 1);
    log_debug("rescan (%s)", rescan_names[why]);
    if (watch_root(ds) == -1) {
        schedule_retry(ds);
        return;
    }
    load_origin(ds);
    watch_live(ds);
    scan_live(ds);
    if (!ds->origin_ok || ds->watch_err[0])
        schedule_retry(ds);
}

/* The directory itself went away (deleted, moved, unmounted). */
static void root_lost(struct discovery *ds, const char *what)
{
    log_error("%s: %s; retrying every %lld ms", ds->cfg->dir, what,
              (long long)ds->cfg->retry_ms);
    snprintf(ds->dir_err, sizeof(ds->dir_err), "%s: %s", ds->cfg->dir, what);
    if (ds->root_wd != -1)
        inotify_rm_watch(ds->ifd, ds->root_wd);
    if (ds->live_wd != -1)
        inotify_rm_watch(ds->ifd, ds->live_wd);
    ds->root_wd = ds->live_wd = -1;
    streams_forget_all(ds);
    schedule_retry(ds);
}

/* ---- events ---------------------------------------------------------------- */

static void on_root_event(struct discovery *ds, const struct inotify_event *ev)
{
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT)) {
        root_lost(ds, "removed or moved");
        return;
    }
    if (ev->len == 0)
        return;
    if (strcmp(ev->name, "origin.json") == 0) {
        if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
            if (load_origin(ds))
                watch_rescan(ds, RS_ORIGIN);   /* advertise the (new) URL at once */
        } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
            origin_failed(ds, "removed", true);
        }
    } else if (strcmp(ev->name, "live") == 0 && (ev->mask & IN_ISDIR)) {
        if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
            watch_live(ds);
            scan_live(ds);
        } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
            if (ds->live_wd != -1)
                inotify_rm_watch(ds->ifd, ds->live_wd);
            ds->live_wd = -1;
            streams_forget_all(ds);
        }
    }
}

static void on_live_event(struct discovery *ds, const struct inotify_event *ev)
{
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
        if (ev->mask & IN_IGNORED)
            ds->live_wd = -1;
        streams_forget_all(ds);
        return;
    }
    if (ev->len == 0 || !(ev->mask & IN_ISDIR) || ev->name[0] == '.')
        return;
    if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
        struct stream_dir *s = stream_watch(ds, ev->name);
        if (s != NULL)
            check_playlist(ds, s);   /* written before the watch took hold? */
    } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
        struct stream_dir *s = stream_by_name(ds, ev->name);
        if (s != NULL) {
            inotify_rm_watch(ds->ifd, s->wd);
            stream_forget(ds, s);
        }
    }
}

static void on_stream_event(struct discovery *ds, struct stream_dir *s,
                            const struct inotify_event *ev)
{
    if (ev->mask & IN_IGNORED) {
        stream_forget(ds, s);
        return;
    }
    if (ev->len > 0 && (ev->mask & (IN_MOVED_TO | IN_CLOSE_WRITE)) &&
        strcmp(ev->name, "index.m3u8") == 0)
        publish_refresh(ds, s, clock_wall_us(), 0);
}

static void on_event(struct discovery *ds, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        log_warn("inotify queue overflow: rescanning");
        watch_rescan(ds, RS_OVERFLOW);
        return;
    }
    if (ev->wd == ds->root_wd && ev->wd != -1)
        on_root_event(ds, ev);
    else if (ev->wd == ds->live_wd && ev->wd != -1)
        on_live_event(ds, ev);
    else {
        struct stream_dir *s = stream_by_wd(ds, ev->wd);
        if (s != NULL)
            on_stream_event(ds, s, ev);
    }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct discovery *ds = arg;
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            return;   /* EAGAIN: drained */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            on_event(ds, ev);
            p += sizeof(*ev) + ev->len;
        }
    }
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    watch_rescan(arg, RS_RETRY);
}

/* ---- lifecycle ------------------------------------------------------------- */

int watch_start(struct discovery *ds)
{
    ds->root_wd = ds->live_wd = -1;
    ds->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ds->ifd == -1) {
        log_error("inotify_init1: %s", strerror(errno));
        return -1;
    }
    ds->iev = event_new(ds->d->base, ds->ifd, EV_READ | EV_PERSIST, on_readable, ds);
    ds->retry = evtimer_new(ds->d->base, on_retry, ds);
    if (ds->iev == NULL || ds->retry == NULL || event_add(ds->iev, NULL) == -1)
        return -1;
    watch_rescan(ds, RS_START);
    return 0;
}

void watch_stop(struct discovery *ds)
{
    if (ds->iev)
        event_free(ds->iev);
    if (ds->retry)
        event_free(ds->retry);
    ds->iev = ds->retry = NULL;
    if (ds->ifd != -1)
        close(ds->ifd);
    ds->ifd = -1;
    free(ds->streams);
    for (size_t i = 0; i < ds->ninvalid; i++)
        free(ds->invalid[i]);
    free(ds->invalid);
    ds->streams = NULL;
    ds->invalid = NULL;
    ds->nstreams = ds->ninvalid = 0;
}

size_t watch_active(const struct discovery *ds)
{
    int64_t now = clock_mono_ms();
    size_t n = 0;
    for (size_t i = 0; i < ds->nstreams; i++)
        n += ds->streams[i].last_ok_ms != 0 && now - ds->streams[i].last_ok_ms < ds->cfg->ttl_ms;
    return n;
}
