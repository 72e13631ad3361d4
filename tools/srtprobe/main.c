/* srtprobe: connects to an SRT listener with a StreamID and says what came of
 * it: "accepted", or the reject code the listener set and its name. ffmpeg
 * 5.1 reports every refusal as "Input/output error"; this tells 1401 from
 * 1404. With --hold it stays connected (sending --send's file, paced) and
 * reports whether and when the listener closed the connection.
 *
 *   srtprobe 'srt://127.0.0.1:9999?streamid=#!::r=cam1,s=sk_...,m=publish'
 *   srtprobe --streamid '#!::r=cam1,s=ss_...,m=publish' --hold 3s --send a.ts 127.0.0.1:9999
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <srt/access_control.h>
#include <srt/srt.h>

#include "sluice/config.h"
#include "sluice/net.h"

/* X(symbol, code, meaning) */
#define EXITS(X)                                                                        \
    X(ACCEPTED, 0, "accepted (and, with --hold, still connected at the end)")        \
    X(USAGE,    1, "bad command line")                                                \
    X(REJECTED, 2, "the listener refused: the reject code and its name are printed")  \
    X(NETWORK,  3, "no answer (timeout), or a local error")                           \
    X(CLOSED,   4, "accepted, then closed by the listener during --hold (printed: after how long)")

enum {
#define X_(sym, code, text) EXIT_##sym = (code),
    EXITS(X_)
#undef X_
};

struct opts {
    char host[256];
    int port;
    char streamid[600];
    char passphrase[100];
    int64_t timeout_ms, hold_ms, latency_ms, rate, rcvbuf;
    const char *send;
    bool quiet;
};

static const struct { int code; const char *name; } names[] = {
    { SRT_REJX_FALLBACK, "fallback" }, { SRT_REJX_KEY_NOTSUP, "key_not_supported" },
    { SRT_REJX_BAD_REQUEST, "bad_request" }, { SRT_REJX_UNAUTHORIZED, "unauthorized" },
    { SRT_REJX_OVERLOAD, "overload" }, { SRT_REJX_FORBIDDEN, "forbidden" },
    { SRT_REJX_NOTFOUND, "not_found" }, { SRT_REJX_BAD_MODE, "bad_mode" },
    { SRT_REJX_UNACCEPTABLE, "unacceptable" }, { SRT_REJX_CONFLICT, "conflict" },
    { SRT_REJX_NOTSUP_MEDIA, "unsupported_media" }, { SRT_REJX_LOCKED, "locked" },
    { SRT_REJX_FAILED_DEPEND, "failed_dependency" }, { SRT_REJX_ISE, "internal" },
    { SRT_REJX_UNIMPLEMENTED, "unimplemented" }, { SRT_REJX_GW, "gateway" },
    { SRT_REJX_DOWN, "unavailable" }, { SRT_REJX_VERSION, "version" },
    { SRT_REJX_NOROOM, "no_room" },
};

static const char *reject_name(int code)
{
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].code == code)
            return names[i].name;
    }
    return code < SRT_REJC_PREDEFINED ? srt_rejectreason_str(code) : "application";
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: srtprobe [options] srt://host:port[?streamid=...&passphrase=...]\n"
        "       srtprobe [options] --streamid ID host:port\n"
        "Connects as an SRT caller and prints \"accepted\" or \"rejected <code> <name>\".\n"
        "The StreamID is passed literally: quote it in a shell.\n"
        "\n"
        "  --streamid ID      the StreamID (overrides the URL's)\n"
        "  --passphrase P     the stream's SRT passphrase\n"
        "  --timeout T        connection timeout (default 3s)\n"
        "  --latency T        SRT latency (default 120ms)\n"
        "  --hold T           once accepted, stay connected this long; report a close\n"
        "  --send FILE        while holding, send FILE (MPEG-TS) in 1316-byte messages\n"
        "  --rate BITS        pace --send at this many bits per second (default 2000000)\n"
        "  --rcvbuf BYTES     libsrt's receive buffer (default libsrt's); while holding,\n"
        "                     srtprobe reads nothing: a small one makes a stalled viewer\n"
        "  --quiet            print nothing, exit codes only\n"
        "\nExit codes:\n");
#define X_(sym, code, text) fprintf(f, "  %d  %s\n", code, text);
    EXITS(X_)
#undef X_
}

/* Copies the value of <key> from the query <q> ("a=1&b=2"), %-decoded. */
static void query_value(const char *q, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, key, klen) != 0 || p[klen] != '=')
            continue;
        size_t n = 0;
        for (const char *v = p + klen + 1; *v && *v != '&' && n + 1 < outlen; v++) {
            unsigned x;
            if (*v == '%' && sscanf(v + 1, "%2x", &x) == 1 && v[1] && v[2]) {
                out[n++] = (char)x;
                v += 2;
            } else {
                out[n++] = *v;
            }
        }
        out[n] = '\0';
        return;
    }
}

static int parse_target(struct opts *o, const char *arg)
{
    char hostport[300];
    const char *q = NULL;
    if (strncmp(arg, "srt://", 6) == 0) {
        arg += 6;
        q = strchr(arg, '?');
    }
    size_t len = q ? (size_t)(q - arg) : strlen(arg);
    if (len >= sizeof(hostport))
        return -1;
    memcpy(hostport, arg, len);
    hostport[len] = '\0';
    if (q) {
        char sid[600] = "", pass[100] = "";
        query_value(q + 1, "streamid", sid, sizeof(sid));
        query_value(q + 1, "passphrase", pass, sizeof(pass));
        if (o->streamid[0] == '\0')
            snprintf(o->streamid, sizeof(o->streamid), "%s", sid);
        if (o->passphrase[0] == '\0')
            snprintf(o->passphrase, sizeof(o->passphrase), "%s", pass);
    }
    return net_split_hostport(hostport, o->host, sizeof(o->host), &o->port) == 0 && o->port > 0
               ? 0 : -1;
}

static int parse_args(struct opts *o, int argc, char **argv)
{
    const char *target = NULL;
    o->timeout_ms = 3000;
    o->latency_ms = 120;
    o->rate = 2000000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = true;
            continue;
        } else if (a[0] != '-') {
            target = a;
            continue;
        } else if (v == NULL) {
            return -1;
        } else if (strcmp(a, "--streamid") == 0) {
            rc = snprintf(o->streamid, sizeof(o->streamid), "%s", v) < (int)sizeof(o->streamid)
                     ? 0 : -1;
        } else if (strcmp(a, "--passphrase") == 0) {
            snprintf(o->passphrase, sizeof(o->passphrase), "%s", v);
        } else if (strcmp(a, "--timeout") == 0) {
            rc = config_parse_ms(v, 1, 600000, &o->timeout_ms);
        } else if (strcmp(a, "--latency") == 0) {
            rc = config_parse_ms(v, 20, 10000, &o->latency_ms);
        } else if (strcmp(a, "--hold") == 0) {
            rc = config_parse_ms(v, 0, 3600000, &o->hold_ms);
        } else if (strcmp(a, "--rate") == 0) {
            rc = config_parse_int(v, 1000, 10000000000LL, &o->rate);
        } else if (strcmp(a, "--rcvbuf") == 0) {
            rc = config_parse_int(v, 32 * 1500, 1024LL * 1024 * 1024, &o->rcvbuf);
        } else if (strcmp(a, "--send") == 0) {
            o->send = v;
        } else {
            return -1;
        }
        if (rc == -1)
            return -1;
        i++;
    }
    return target != NULL ? parse_target(o, target) : -1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_int(SRTSOCKET s, SRT_SOCKOPT opt, int v)
{
    return srt_setsockflag(s, opt, &v, sizeof(v));
}

static SRTSOCKET dial(const struct opts *o, int *code)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", o->port);
    struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
    *code = 0;
    if (getaddrinfo(o->host, service, &hints, &ai) != 0) {
        fprintf(stderr, "srtprobe: cannot resolve %s\n", o->host);
        return SRT_INVALID_SOCK;
    }
    SRTSOCKET s = srt_create_socket();
    int live = SRTT_LIVE;
    srt_setsockflag(s, SRTO_TRANSTYPE, &live, sizeof(live));
    set_int(s, SRTO_CONNTIMEO, (int)o->timeout_ms);
    set_int(s, SRTO_LATENCY, (int)o->latency_ms);
    if (o->rcvbuf > 0 && set_int(s, SRTO_RCVBUF, (int)o->rcvbuf) == SRT_ERROR)
        fprintf(stderr, "srtprobe: --rcvbuf: %s\n", srt_getlasterror_str());
    if (o->streamid[0])
        srt_setsockflag(s, SRTO_STREAMID, o->streamid, (int)strlen(o->streamid));
    if (o->passphrase[0])
        srt_setsockflag(s, SRTO_PASSPHRASE, o->passphrase, (int)strlen(o->passphrase));
    int rc = srt_connect(s, ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc == SRT_ERROR) {
        *code = srt_getrejectreason(s);
        if (srt_getlasterror(NULL) != SRT_ECONNREJ || *code == SRT_REJ_TIMEOUT)
            *code = -1;
        if (*code == -1 && !o->quiet)
            fprintf(stderr, "srtprobe: %s\n", srt_getlasterror_str());
        srt_close(s);
        return SRT_INVALID_SOCK;
    }
    return s;
}

/* Stays connected for --hold, sending --send's file. Returns an exit code. */
static int hold(const struct opts *o, SRTSOCKET s)
{
    int fd = -1;
    if (o->send && (fd = open(o->send, O_RDONLY)) == -1) {
        fprintf(stderr, "srtprobe: cannot open %s: %s\n", o->send, strerror(errno));
        return EXIT_USAGE;
    }
    int64_t start = now_ms(), sent = 0;
    char buf[1316];
    int rc = EXIT_ACCEPTED;
    while (now_ms() - start < o->hold_ms) {
        int64_t due = start + sent * 8 * 1000 / o->rate;
        if (fd != -1 && now_ms() >= due) {
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n <= 0) {
                close(fd);
                fd = -1;
            } else if (srt_sendmsg(s, buf, (int)n, -1, 1) == SRT_ERROR) {
                rc = EXIT_CLOSED;
            } else {
                sent += n;
            }
        } else {
            usleep(2000);
        }
        if (rc == EXIT_CLOSED || srt_getsockstate(s) != SRTS_CONNECTED) {
            rc = EXIT_CLOSED;
            break;
        }
    }
    if (fd != -1)
        close(fd);
    if (rc == EXIT_CLOSED && !o->quiet)
        printf("closed by the listener after %.2f s\n", (double)(now_ms() - start) / 1000);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o = { 0 };
    if (parse_args(&o, argc, argv) == -1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    srt_startup();
    srt_setloglevel(LOG_CRIT);
    int code, rc;
    SRTSOCKET s = dial(&o, &code);
    if (s == SRT_INVALID_SOCK) {
        if (code > 0 && !o.quiet)
            printf("rejected %d %s\n", code, reject_name(code));
        rc = code > 0 ? EXIT_REJECTED : EXIT_NETWORK;
    } else {
        if (!o.quiet) {
            printf("accepted\n");
            fflush(stdout);
        }
        rc = o.hold_ms > 0 ? hold(&o, s) : EXIT_ACCEPTED;
        srt_close(s);
    }
    srt_cleanup();
    return rc;
}
