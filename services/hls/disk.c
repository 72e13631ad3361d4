/* The origin directory: see disk.h. */
#include "disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "playlist.h"
#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/names.h"

/* Records a failure (logged when it differs from the last one). */
__attribute__((format(printf, 2, 3)))
static void failed(struct disk *d, const char *fmt, ...)
{
    char msg[sizeof(d->err)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (strcmp(msg, d->err) != 0)
        log_error("output directory: %s", msg);
    snprintf(d->err, sizeof(d->err), "%s", msg);
    d->errors++;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes <path> through "<dirpath>/.<file>.tmp" and rename(2). */
static int atomic_write(struct disk *d, const char *dirpath, const char *file, const void *buf,
                        size_t len, bool *enoent)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dirpath, file) >= (int)sizeof(tmp) ||
        snprintf(path, sizeof(path), "%s/%s", dirpath, file) >= (int)sizeof(path)) {
        failed(d, "%s/%s: path too long", dirpath, file);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        if (enoent != NULL && errno == ENOENT) {
            *enoent = true;
            return -1;
        }
        failed(d, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (write_all(fd, buf, len) == -1) {
        failed(d, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) == -1 || rename(tmp, path) == -1) {
        failed(d, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    d->err[0] = '\0';
    return 0;
}

static bool ours(const char *file)
{
    uint64_t e, s;
    size_t n = strlen(file);
    if (file[0] == '.' && n > 5 && strcmp(file + n - 4, ".tmp") == 0)
        return true;
    return playlist_parse_name(file, n, &e, &s) != 0;
}

/* Removes the files hls writes in <path>, then the directory if empty. */
static void clean_dir(const char *path)
{
    DIR *dir = opendir(path);
    if (dir == NULL)
        return;
    struct dirent *de;
    char file[PATH_MAX];
    while ((de = readdir(dir)) != NULL) {
        if (ours(de->d_name) &&
            snprintf(file, sizeof(file), "%s/%s", path, de->d_name) < (int)sizeof(file))
            unlink(file);
    }
    closedir(dir);
    rmdir(path);
}

static int make_dir(struct disk *d, const char *path)
{
    if (mkdir(path, 0755) == -1 && errno != EEXIST) {
        failed(d, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int disk_open(struct disk *d, const char *dir)
{
    memset(d, 0, sizeof(*d));
    d->dir = strdup(dir);
    char live[PATH_MAX];
    if (d->dir == NULL || snprintf(live, sizeof(live), "%s/live", dir) >= (int)sizeof(live)) {
        snprintf(d->err, sizeof(d->err), "%s: path too long", dir);
        return -1;
    }
    if (make_dir(d, dir) == -1 || make_dir(d, live) == -1)
        return -1;
    DIR *ld = opendir(live);
    if (ld == NULL) {
        failed(d, "cannot read %s: %s", live, strerror(errno));
        return -1;
    }
    struct dirent *de;
    char path[PATH_MAX];
    unsigned cleaned = 0;
    while ((de = readdir(ld)) != NULL) {
        if (stream_name_valid(de->d_name) &&
            snprintf(path, sizeof(path), "%s/%s", live, de->d_name) < (int)sizeof(path)) {
            clean_dir(path);
            cleaned++;
        }
    }
    closedir(ld);
    if (cleaned > 0)
        log_info("output directory: removed what an earlier run left of %u streams", cleaned);
    return 0;
}

void disk_close(struct disk *d)
{
    free(d->dir);
    d->dir = NULL;
}

static int stream_dir(struct disk *d, const char *name, char *out, size_t outlen)
{
    if (snprintf(out, outlen, "%s/live/%s", d->dir, name) >= (int)outlen) {
        failed(d, "%s/live/%s: path too long", d->dir, name);
        return -1;
    }
    return 0;
}

int disk_write(struct disk *d, const char *name, const char *file, const void *buf, size_t len)
{
    char dir[PATH_MAX];
    if (stream_dir(d, name, dir, sizeof(dir)) == -1)
        return -1;
    bool enoent = false;
    if (atomic_write(d, dir, file, buf, len, &enoent) == 0)
        return 0;
    if (!enoent)
        return -1;
    /* the stream's directory is not there (yet, or any more): make it */
    char live[PATH_MAX];
    snprintf(live, sizeof(live), "%s/live", d->dir);
    if (make_dir(d, live) == -1 || make_dir(d, dir) == -1)
        return -1;
    return atomic_write(d, dir, file, buf, len, NULL);
}

void disk_remove(struct disk *d, const char *name, const char *file)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/live/%s/%s", d->dir, name, file) >= (int)sizeof(path))
        return;
    if (unlink(path) == -1 && errno != ENOENT)
        failed(d, "cannot remove %s: %s", path, strerror(errno));
}

void disk_remove_stream(struct disk *d, const char *name)
{
    char dir[PATH_MAX];
    if (stream_dir(d, name, dir, sizeof(dir)) == 0)
        clean_dir(dir);
}

int disk_write_origin(struct disk *d, const char *url, const char *node, int64_t now_us)
{
    char at[32];
    clock_rfc3339(at, sizeof(at), now_us);
    json_t *v = json_pack("{s:s, s:s, s:s}", "url", url, "node", node, "updated_at", at);
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (text == NULL) {
        failed(d, "origin.json: out of memory");
        return -1;
    }
    size_t n = strlen(text);
    text[n] = '\n';
    int rc = atomic_write(d, d->dir, "origin.json", text, n + 1, NULL);
    free(text);
    return rc;
}

bool disk_has_origin(const struct disk *d)
{
    char path[PATH_MAX];
    struct stat st;
    return snprintf(path, sizeof(path), "%s/origin.json", d->dir) < (int)sizeof(path) &&
           stat(path, &st) == 0;
}

bool disk_ok(struct disk *d)
{
    if (access(d->dir, W_OK) == -1) {
        snprintf(d->err, sizeof(d->err), "%s: %s", d->dir, strerror(errno));
        d->access_failed = true;
        return false;
    }
    if (d->access_failed) {
        d->access_failed = false;
        d->err[0] = '\0';
    }
    return d->err[0] == '\0';
}
