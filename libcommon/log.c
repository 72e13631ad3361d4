/* Logging: see log.h. */
#include "sluice/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sluice/clock.h"

#define LOG_LINE_MAX 4096

enum log_level log_min_level = LOGL_INFO;

static struct {
    char daemon[32];
    enum log_format format;
    char path[512];
    int fd;                 /* 2, or the file */
    pthread_mutex_t lock;   /* guards fd swaps on reopen */
} lg = { .daemon = "sluice", .fd = 2, .lock = PTHREAD_MUTEX_INITIALIZER };

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static int open_log(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int log_init(const char *daemon, enum log_level level, enum log_format format,
             const char *path)
{
    snprintf(lg.daemon, sizeof(lg.daemon), "%s", daemon);
    log_min_level = level;
    lg.format = format;
    log_close();
    if (path == NULL || path[0] == '\0')
        return 0;
    snprintf(lg.path, sizeof(lg.path), "%s", path);
    int fd = open_log(path);
    if (fd == -1) {
        lg.path[0] = '\0';
        return -1;
    }
    lg.fd = fd;
    return 0;
}

void log_reopen(void)
{
    if (lg.path[0] == '\0')
        return;
    int fd = open_log(lg.path);
    if (fd == -1)
        return;   /* keep writing to the old file rather than losing lines */
    pthread_mutex_lock(&lg.lock);
    int old = lg.fd;
    lg.fd = fd;
    pthread_mutex_unlock(&lg.lock);
    close(old);
}

void log_close(void)
{
    pthread_mutex_lock(&lg.lock);
    if (lg.fd != 2)
        close(lg.fd);
    lg.fd = 2;
    pthread_mutex_unlock(&lg.lock);
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_format_parse(const char *s, enum log_format *out)
{
    if (strcmp(s, "text") == 0)
        *out = LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = LOG_JSON;
    else
        return -1;
    return 0;
}

/* Appends <src> to <dst> at *<pos> as the inside of a JSON string. */
static void json_escape_into(char *dst, size_t cap, size_t *pos, const char *src)
{
    for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
        char tmp[8];
        const char *add = tmp;
        if (*p == '"' || *p == '\\')
            snprintf(tmp, sizeof(tmp), "\\%c", *p);
        else if (*p < 0x20)
            snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
        else
            tmp[0] = (char)*p, tmp[1] = '\0';
        size_t n = strlen(add);
        if (*pos + n + 3 >= cap)   /* room for the closing "}\n */
            return;
        memcpy(dst + *pos, add, n);
        *pos += n;
    }
}

void log_write(enum log_level level, const char *fmt, ...)
{
    char msg[LOG_LINE_MAX], line[LOG_LINE_MAX * 2], ts[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    clock_rfc3339(ts, sizeof(ts), clock_wall_us());

    size_t n;
    if (lg.format == LOG_JSON) {
        int h = snprintf(line, sizeof(line),
                         "{\"ts\":\"%s\",\"level\":\"%s\",\"daemon\":\"%s\",\"msg\":\"",
                         ts, level_names[level], lg.daemon);
        n = (size_t)h;
        json_escape_into(line, sizeof(line), &n, msg);
        memcpy(line + n, "\"}\n", 3);
        n += 3;
    } else {
        int h = snprintf(line, sizeof(line), "%s %s %s: %s\n", ts, lg.daemon,
                         level_names[level], msg);
        n = (size_t)h < sizeof(line) ? (size_t)h : sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    pthread_mutex_lock(&lg.lock);
    ssize_t w;
    do {
        w = write(lg.fd, line, n);
    } while (w == -1 && errno == EINTR);
    pthread_mutex_unlock(&lg.lock);
}

char *log_escape(char *dst, size_t dstlen, const void *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = src;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        bool plain = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\' && s[i] != '"';
        size_t need = plain ? 1 : 4;
        if (o + need + 4 > dstlen) {   /* keep room for "..." and NUL */
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        if (plain) {
            dst[o++] = (char)s[i];
        } else {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[s[i] >> 4];
            dst[o++] = hex[s[i] & 15];
        }
    }
    dst[o] = '\0';
    return dst;
}
