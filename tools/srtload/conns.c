/* srtload's connections and its one loop: see srtload.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <srt/srt.h>

#include "srtload.h"
#include "sluice/clock.h"
#include "sluice/net.h"

#define TICK_US 1000                  /* the loop's period */
#define STREAMID_MAX 512
#define RECV_PER_TURN 256             /* messages read from one viewer per turn */

enum role { R_PUBLISH, R_VIEW, R_REFUSE };
enum cstate { C_IDLE, C_CONNECTING, C_CONNECTED, C_REFUSED, C_BROKEN, C_DONE };

static const char *const role_names[] = { "publish", "view", "refuse" };
static const char *const state_names[] = { "idle", "connecting", "connected", "refused",
                                           "broken", "done" };

struct caller {
    enum role role;
    enum cstate state;
    SRTSOCKET sock;
    struct sockaddr_storage target;   /* the run's, or the StreamID line's own */
    int target_len;
    char streamid[STREAMID_MAX + 1];
    char stream[65];                  /* r= of the StreamID, for the report */
    int64_t start_at_us;              /* when to connect */
    int64_t connected_us;
    int reject;                       /* the listener's code, or libsrt's */
    /* publishing */
    size_t next;                      /* the next message */
    int64_t base_us;                  /* when message 0 of this pass is due */
    uint64_t msgs, bytes, send_errors;
    /* viewing */
    uint64_t recv_msgs, recv_bytes;
    SRT_TRACEBSTATS st;               /* libsrt's counters at the end */
    bool have_st;
};

struct run {
    const struct srtload_config *cfg;
    const struct media *m;
    struct sockaddr_storage target;
    int target_len;
    struct caller *c;
    size_t n;
    int eid;
    SRTSOCKET *keys;                  /* socket -> caller: open addressing */
    struct caller **vals;
    size_t cap;
    int local_port;                   /* the shared UDP port, once bound */
    SRT_EPOLL_EVENT *events;
    size_t next_refuse;               /* the next handshake to start */
    size_t refusing;                  /* handshakes under way */
    int64_t t0_us, t1_us;
    int64_t refuse_first_us, refuse_last_us;
};

/* ---- socket -> caller ---------------------------------------------------- */

static size_t slot(const struct run *r, SRTSOCKET s)
{
    size_t i = ((uint32_t)s * 2654435761u) & (r->cap - 1);
    while (r->keys[i] != SRT_INVALID_SOCK && r->keys[i] != s)
        i = (i + 1) & (r->cap - 1);
    return i;
}

/* Sockets are only added: a closed one stays, pointing at its caller, whose
 * sock no longer matches it. */
static void map_put(struct run *r, SRTSOCKET s, struct caller *c)
{
    size_t i = slot(r, s);
    r->keys[i] = s;
    r->vals[i] = c;
}

static struct caller *map_get(const struct run *r, SRTSOCKET s)
{
    size_t i = slot(r, s);
    struct caller *c = r->keys[i] == s ? r->vals[i] : NULL;
    return c != NULL && c->sock == s ? c : NULL;
}

/* ---- setup -------------------------------------------------------------- */

static int resolve(const char *target, struct sockaddr_storage *sa, int *len, char *err,
                   size_t errlen)
{
    char host[256], service[16];
    int port;
    if (net_split_hostport(target, host, sizeof(host), &port) == -1 || port == 0) {
        snprintf(err, errlen, "--target %s: want host:port", target);
        return -1;
    }
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
    int rc = getaddrinfo(host[0] ? host : "127.0.0.1", service, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", target, gai_strerror(rc));
        return -1;
    }
    memcpy(sa, ai->ai_addr, ai->ai_addrlen);
    *len = (int)ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* The lines of <path>: "STREAMID", or "HOST:PORT STREAMID" for a caller with
 * its own target (one srt-live-transmit per stream takes one caller each).
 * Blank lines and "#" comments are skipped (a StreamID starts with "#!"). */
static char **read_lines(const char *path, size_t *count, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char line[STREAMID_MAX + 4];
    char **out = NULL;
    size_t n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strcspn(line, "\r\n");
        line[len] = '\0';
        if (len == 0 || (line[0] == '#' && line[1] != '!'))
            continue;
        char **grown = realloc(out, (n + 1) * sizeof(*out));
        if (grown == NULL || (grown[n] = strdup(line)) == NULL) {
            out = grown ? grown : out;
            break;
        }
        out = grown;
        n++;
    }
    fclose(f);
    if (n == 0)
        snprintf(err, errlen, "%s: no StreamID in it", path);
    *count = n;
    return out;
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

static void stream_of(const char *sid, char *out, size_t outlen)
{
    const char *r = strstr(sid, "r=");
    while (r != NULL && r != sid && r[-1] != ':' && r[-1] != ',')
        r = strstr(r + 1, "r=");
    size_t len = r ? strcspn(r + 2, ",") : 0;
    snprintf(out, outlen, "%.*s", (int)(len < outlen ? len : outlen - 1), r ? r + 2 : "");
}

/* Adds <count> callers of <role>, cycling through <lines>. */
static int add_callers(struct run *r, enum role role, char **lines, size_t nlines,
                       size_t count, char *err, size_t errlen)
{
    for (size_t i = 0; i < count; i++) {
        struct caller *c = &r->c[r->n++];
        const char *line = lines[i % nlines], *sp = strchr(line, ' ');
        c->role = role;
        c->sock = SRT_INVALID_SOCK;
        c->target = r->target;
        c->target_len = r->target_len;
        if (sp != NULL) {
            char target[300];
            snprintf(target, sizeof(target), "%.*s", (int)(sp - line), line);
            if (resolve(target, &c->target, &c->target_len, err, errlen) == -1)
                return -1;
            line = sp + 1;
        }
        snprintf(c->streamid, sizeof(c->streamid), "%s", line);
        stream_of(c->streamid, c->stream, sizeof(c->stream));
    }
    return 0;
}

struct run *run_new(const struct srtload_config *cfg, const struct media *m, char *err,
                    size_t errlen)
{
    struct run *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->cfg = cfg;
    r->m = m;
    r->eid = SRT_ERROR;
    size_t total = (size_t)(cfg->publishers + cfg->viewers + cfg->handshakes);
    char **pub = NULL, **view = NULL;
    size_t npub = 0, nview = 0;
    r->c = calloc(total ? total : 1, sizeof(*r->c));
    r->events = calloc(total ? total : 1, sizeof(*r->events));
    r->cap = 16;
    while (r->cap < 2 * total + 2)
        r->cap *= 2;
    r->keys = malloc(r->cap * sizeof(*r->keys));
    r->vals = calloc(r->cap, sizeof(*r->vals));
    for (size_t i = 0; r->keys != NULL && i < r->cap; i++)
        r->keys[i] = SRT_INVALID_SOCK;
    if (r->c == NULL || r->events == NULL || r->keys == NULL || r->vals == NULL ||
        resolve(cfg->target, &r->target, &r->target_len, err, errlen) == -1 ||
        (cfg->publishers > 0 && (pub = read_lines(cfg->publish, &npub, err, errlen)) == NULL) ||
        (cfg->viewers > 0 && (view = read_lines(cfg->view, &nview, err, errlen)) == NULL)) {
        free_lines(pub, npub);
        run_free(r);
        return NULL;
    }
    char *refuse[] = { cfg->refuse };
    int rc = add_callers(r, R_PUBLISH, pub, npub, (size_t)cfg->publishers, err, errlen);
    if (rc == 0)
        rc = add_callers(r, R_VIEW, view, nview, (size_t)cfg->viewers, err, errlen);
    if (rc == 0)
        rc = add_callers(r, R_REFUSE, refuse, 1, (size_t)cfg->handshakes, err, errlen);
    free_lines(pub, npub);
    free_lines(view, nview);
    if (rc == -1) {
        run_free(r);
        return NULL;
    }
    /* publishers and viewers connect spread over --spread; each publisher
     * starts at its own point of the file */
    size_t spread = (size_t)(cfg->publishers + cfg->viewers);
    for (size_t i = 0; i < spread; i++) {
        r->c[i].start_at_us = spread > 1 ? cfg->spread_ms * 1000 * (int64_t)i /
                                               (int64_t)(spread - 1) : 0;
        if (r->c[i].role == R_PUBLISH && m->nmsgs > 0)
            r->c[i].next = i * m->nmsgs / (size_t)cfg->publishers;
    }
    if ((r->eid = srt_epoll_create()) == SRT_ERROR) {
        snprintf(err, errlen, "srt_epoll_create: %s", srt_getlasterror_str());
        run_free(r);
        return NULL;
    }
    return r;
}

/* ---- connecting --------------------------------------------------------- */

static void set_int(SRTSOCKET s, SRT_SOCKOPT opt, int v)
{
    srt_setsockflag(s, opt, &v, sizeof(v));
}

/* Binds <s> to the shared UDP port (the first caller picks it), so that
 * every caller goes through one libsrt multiplexer. */
static int bind_shared(struct run *r, SRTSOCKET s)
{
    struct sockaddr_storage local;
    memset(&local, 0, sizeof(local));
    local.ss_family = r->target.ss_family;
    if (local.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&local)->sin6_port = htons((uint16_t)r->local_port);
    else
        ((struct sockaddr_in *)&local)->sin_port = htons((uint16_t)r->local_port);
    int len = local.ss_family == AF_INET6 ? (int)sizeof(struct sockaddr_in6)
                                          : (int)sizeof(struct sockaddr_in);
    if (srt_bind(s, (struct sockaddr *)&local, len) == SRT_ERROR)
        return -1;
    if (r->local_port == 0) {
        struct sockaddr_storage got;
        int glen = sizeof(got);
        if (srt_getsockname(s, (struct sockaddr *)&got, &glen) == 0)
            r->local_port = ntohs(got.ss_family == AF_INET6
                                      ? ((struct sockaddr_in6 *)&got)->sin6_port
                                      : ((struct sockaddr_in *)&got)->sin_port);
    }
    return 0;
}

/* Starts connecting <c> (the outcome comes through epoll). Returns 0, or -1
 * (<c> is then broken, its socket closed). */
static int start_connect(struct run *r, struct caller *c, int64_t now)
{
    bool no = false;
    int live = SRTT_LIVE, events = SRT_EPOLL_OUT | SRT_EPOLL_ERR;
    c->sock = srt_create_socket();
    c->state = C_CONNECTING;
    c->connected_us = now;
    if (c->sock == SRT_INVALID_SOCK) {
        c->state = C_BROKEN;
        return -1;
    }
    map_put(r, c->sock, c);
    srt_setsockflag(c->sock, SRTO_TRANSTYPE, &live, sizeof(live));
    srt_setsockflag(c->sock, SRTO_RCVSYN, &no, sizeof(no));
    srt_setsockflag(c->sock, SRTO_SNDSYN, &no, sizeof(no));
    set_int(c->sock, SRTO_LATENCY, (int)r->cfg->latency_ms);
    set_int(c->sock, SRTO_CONNTIMEO, (int)r->cfg->connect_timeout_ms);
    srt_setsockflag(c->sock, SRTO_STREAMID, c->streamid, (int)strlen(c->streamid));
    if (r->cfg->passphrase[0] != '\0')
        srt_setsockflag(c->sock, SRTO_PASSPHRASE, r->cfg->passphrase,
                        (int)strlen(r->cfg->passphrase));
    if ((!r->cfg->own_ports && bind_shared(r, c->sock) == -1) ||
        srt_epoll_add_usock(r->eid, c->sock, &events) == SRT_ERROR ||
        srt_connect(c->sock, (struct sockaddr *)&c->target, c->target_len) == SRT_ERROR) {
        fprintf(stderr, "srtload: connect: %s\n", srt_getlasterror_str());
        c->state = C_BROKEN;
        srt_epoll_remove_usock(r->eid, c->sock);
        srt_close(c->sock);
        c->sock = SRT_INVALID_SOCK;
        return -1;
    }
    return 0;
}

static void on_connected(struct run *r, struct caller *c, int64_t now)
{
    int events = c->role == R_VIEW ? SRT_EPOLL_IN | SRT_EPOLL_ERR : SRT_EPOLL_ERR;
    c->state = C_CONNECTED;
    c->connected_us = now;
    c->base_us = now - (c->role == R_PUBLISH ? r->m->msgs[c->next].at_us : 0);
    srt_epoll_update_usock(r->eid, c->sock, &events);
    if (c->role == R_REFUSE) {               /* it was not refused after all */
        r->refusing--;
        c->state = C_DONE;
        srt_epoll_remove_usock(r->eid, c->sock);
        srt_close(c->sock);
        c->sock = SRT_INVALID_SOCK;
    }
}

static void on_failed(struct run *r, struct caller *c)
{
    srt_epoll_remove_usock(r->eid, c->sock);
    if (c->state == C_CONNECTING) {
        c->reject = srt_getrejectreason(c->sock);
        c->state = c->reject == SRT_REJ_TIMEOUT || c->reject == SRT_REJ_UNKNOWN ? C_BROKEN
                                                                                : C_REFUSED;
        if (c->role == R_REFUSE)
            r->refusing--;
    } else {
        c->state = C_BROKEN;                  /* connected, then closed by the listener */
        if (c->have_st == false && srt_bstats(c->sock, &c->st, 0) != SRT_ERROR)
            c->have_st = true;
    }
    if (c->role == R_REFUSE) {
        int64_t now = clock_mono_us();
        if (r->refuse_first_us == 0)
            r->refuse_first_us = now;
        r->refuse_last_us = now;
        srt_close(c->sock);
        c->sock = SRT_INVALID_SOCK;
    }
}

/* ---- the loop ----------------------------------------------------------- */

/* Whether libsrt has more for <s> to read (or an error to report). */
static bool readable(SRTSOCKET s)
{
    int events = 0, len = sizeof(events);
    return srt_getsockflag(s, SRTO_EVENT, &events, &len) != SRT_ERROR &&
           (events & (SRT_EPOLL_IN | SRT_EPOLL_ERR));
}

/* Reads what <c> has. libsrt says "nothing more" by throwing and catching a
 * C++ exception inside srt_recvmsg, for every viewer at every tick it had a
 * message: asking first is far cheaper (ingest's srtsrv.c does the same),
 * and keeps the load generator cheaper than what it loads. */
static void read_viewer(struct caller *c)
{
    static char buf[1500];
    for (int i = 0; i < RECV_PER_TURN; i++) {
        int n = srt_recvmsg(c->sock, buf, sizeof(buf));
        if (n == SRT_ERROR || n <= 0)
            return;
        c->recv_msgs++;
        c->recv_bytes += (uint64_t)n;
        if (!readable(c->sock))
            return;
    }
}

static void poll_events(struct run *r, int64_t now)
{
    int n = srt_epoll_uwait(r->eid, r->events, (int)r->n, 0);
    for (int i = 0; i < n; i++) {
        SRTSOCKET s = r->events[i].fd;
        int ev = r->events[i].events;
        struct caller *c = map_get(r, s);
        if (c == NULL)
            continue;
        if (c->state == C_CONNECTING && (ev & SRT_EPOLL_OUT) &&
            srt_getsockstate(s) == SRTS_CONNECTED)
            on_connected(r, c, now);
        else if (ev & SRT_EPOLL_ERR || srt_getsockstate(s) > SRTS_CONNECTED)
            on_failed(r, c);
        else if (c->state == C_CONNECTED && c->role == R_VIEW && (ev & SRT_EPOLL_IN))
            read_viewer(c);
    }
}

/* Sends what is due for <c>: every message whose time has come (a late
 * loop catches up at once: live SRT carries time in its packets). */
static void send_due(struct run *r, struct caller *c, int64_t now)
{
    const struct media *m = r->m;
    while (c->state == C_CONNECTED) {
        const struct media_msg *msg = &m->msgs[c->next];
        if (c->base_us + msg->at_us > now)
            return;
        if (srt_sendmsg2(c->sock, (const char *)m->data + msg->off, (int)msg->len, NULL) ==
            SRT_ERROR) {
            if (srt_getlasterror(NULL) != SRT_EASYNCSND) {
                on_failed(r, c);
                return;
            }
            c->send_errors++;                 /* libsrt's buffer is full: dropped */
        } else {
            c->msgs++;
            c->bytes += msg->len;
        }
        if (++c->next == m->nmsgs) {
            c->next = 0;
            c->base_us += m->loop_us;
        }
    }
}

static void start_due(struct run *r, int64_t now)
{
    for (size_t i = 0; i < r->n; i++) {
        struct caller *c = &r->c[i];
        if (c->role != R_REFUSE && c->state == C_IDLE && r->t0_us + c->start_at_us <= now)
            start_connect(r, c, now);
    }
    while (r->next_refuse < r->n && r->refusing < (size_t)r->cfg->parallel) {
        struct caller *c = &r->c[r->next_refuse++];
        if (c->role != R_REFUSE)
            continue;
        if (start_connect(r, c, now) == 0)
            r->refusing++;
    }
}

static bool handshakes_done(const struct run *r)
{
    return r->next_refuse >= r->n && r->refusing == 0;
}

void run_loop(struct run *r, volatile int *stop)
{
    bool only_handshakes = r->cfg->publishers == 0 && r->cfg->viewers == 0;
    r->t0_us = clock_mono_us();
    int64_t end = r->t0_us + r->cfg->duration_ms * 1000;
    while (!*stop) {
        int64_t now = clock_mono_us();
        if (now >= end || (only_handshakes && handshakes_done(r)))
            break;
        start_due(r, now);
        poll_events(r, now);
        for (size_t i = 0; i < r->n; i++) {
            if (r->c[i].role == R_PUBLISH)
                send_due(r, &r->c[i], now);
        }
        int64_t wait = TICK_US - (clock_mono_us() - now);
        if (wait > 0) {
            struct timespec ts = { 0, (long)wait * 1000 };
            nanosleep(&ts, NULL);
        }
    }
    r->t1_us = clock_mono_us();
    for (size_t i = 0; i < r->n; i++) {
        struct caller *c = &r->c[i];
        if (c->state == C_CONNECTED && srt_bstats(c->sock, &c->st, 0) != SRT_ERROR)
            c->have_st = true;
    }
}

/* ---- the report --------------------------------------------------------- */

struct totals {
    unsigned count, connected, refused, broken;
    uint64_t msgs, bytes, send_errors, recv_msgs, recv_bytes;
    int64_t pkts_sent, pkts_recv, pkts_retrans, pkts_lost, pkts_dropped, pkts_undecrypted;
    double rtt_max;
};

static void add_up(const struct caller *c, struct totals *t)
{
    t->count++;
    t->connected += c->state == C_CONNECTED;
    t->refused += c->state == C_REFUSED;
    t->broken += c->state == C_BROKEN;
    t->msgs += c->msgs;
    t->bytes += c->bytes;
    t->send_errors += c->send_errors;
    t->recv_msgs += c->recv_msgs;
    t->recv_bytes += c->recv_bytes;
    if (!c->have_st)
        return;
    t->pkts_sent += c->st.pktSentTotal;
    t->pkts_recv += c->st.pktRecvTotal;
    t->pkts_retrans += c->st.pktRetransTotal;
    t->pkts_lost += c->role == R_VIEW ? c->st.pktRcvLossTotal : c->st.pktSndLossTotal;
    t->pkts_dropped += c->role == R_VIEW ? c->st.pktRcvDropTotal : c->st.pktSndDropTotal;
    t->pkts_undecrypted += c->st.pktRcvUndecryptTotal;
    if (c->st.msRTT > t->rtt_max)
        t->rtt_max = c->st.msRTT;
}

static void print_totals(const char *name, const struct totals *t, double secs)
{
    printf("\"%s\":{\"count\":%u,\"connected\":%u,\"refused\":%u,\"broken\":%u,"
           "\"msgs\":%llu,\"bytes\":%llu,\"send_errors\":%llu,\"recv_msgs\":%llu,"
           "\"recv_bytes\":%llu,\"mbps\":%.3f,\"pkts_sent\":%lld,\"pkts_recv\":%lld,"
           "\"pkts_retrans\":%lld,\"pkts_lost\":%lld,\"pkts_dropped\":%lld,"
           "\"pkts_undecrypted\":%lld,\"rtt_max_ms\":%.3f},",
           name, t->count, t->connected, t->refused, t->broken, (unsigned long long)t->msgs,
           (unsigned long long)t->bytes, (unsigned long long)t->send_errors,
           (unsigned long long)t->recv_msgs, (unsigned long long)t->recv_bytes,
           secs > 0 ? (double)(t->bytes + t->recv_bytes) * 8 / secs / 1e6 : 0.0,
           (long long)t->pkts_sent, (long long)t->pkts_recv, (long long)t->pkts_retrans,
           (long long)t->pkts_lost, (long long)t->pkts_dropped, (long long)t->pkts_undecrypted,
           t->rtt_max);
}

static void print_refusals(const struct run *r)
{
    int codes[64];
    unsigned counts[64], ncodes = 0, timeouts = 0, accepted = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct caller *c = &r->c[i];
        if (c->role != R_REFUSE)
            continue;
        if (c->state == C_DONE) {
            accepted++;
            continue;
        }
        if (c->state != C_REFUSED) {
            timeouts++;
            continue;
        }
        unsigned k = 0;
        while (k < ncodes && codes[k] != c->reject)
            k++;
        if (k == ncodes && ncodes < 64) {
            codes[ncodes] = c->reject;
            counts[ncodes++] = 0;
        }
        if (k < ncodes)
            counts[k]++;
    }
    printf("\"handshakes\":{\"count\":%lld,\"accepted\":%u,\"failed\":%u,\"seconds\":%.3f,"
           "\"refused\":{", (long long)r->cfg->handshakes, accepted, timeouts,
           r->refuse_last_us > r->refuse_first_us
               ? (double)(r->refuse_last_us - r->refuse_first_us) / 1e6 : 0.0);
    for (unsigned k = 0; k < ncodes; k++)
        printf("%s\"%d\":%u", k ? "," : "", codes[k], counts[k]);
    printf("}},");
}

static void print_caller(const struct caller *c, bool first)
{
    printf("%s{\"role\":\"%s\",\"stream\":\"%s\",\"state\":\"%s\",\"reject\":%d,"
           "\"msgs\":%llu,\"bytes\":%llu,\"recv_bytes\":%llu,\"pkts_sent\":%lld,"
           "\"pkts_recv\":%lld,\"pkts_retrans\":%lld,\"pkts_lost\":%lld,\"pkts_dropped\":%lld,"
           "\"rtt_ms\":%.3f}",
           first ? "" : ",", role_names[c->role], c->stream, state_names[c->state], c->reject,
           (unsigned long long)c->msgs, (unsigned long long)c->bytes,
           (unsigned long long)c->recv_bytes, (long long)c->st.pktSentTotal,
           (long long)c->st.pktRecvTotal, (long long)c->st.pktRetransTotal,
           (long long)(c->role == R_VIEW ? c->st.pktRcvLossTotal : c->st.pktSndLossTotal),
           (long long)(c->role == R_VIEW ? c->st.pktRcvDropTotal : c->st.pktSndDropTotal),
           c->st.msRTT);
}

void run_report(const struct run *r)
{
    struct totals pub = { 0 }, view = { 0 };
    double secs = (double)(r->t1_us - r->t0_us) / 1e6;
    for (size_t i = 0; i < r->n; i++) {
        if (r->c[i].role == R_PUBLISH)
            add_up(&r->c[i], &pub);
        else if (r->c[i].role == R_VIEW)
            add_up(&r->c[i], &view);
    }
    printf("\"seconds\":%.3f,\"media_mbps\":%.3f,", secs, r->m->bitrate / 1e6);
    print_totals("publishers", &pub, secs);
    print_totals("viewers", &view, secs);
    print_refusals(r);
    printf("\"connections\":[");
    bool first = true;
    for (size_t i = 0; r->cfg->per_connection && i < r->n; i++) {
        if (r->c[i].role != R_REFUSE) {
            print_caller(&r->c[i], first);
            first = false;
        }
    }
    printf("]");
}

int run_status(const struct run *r)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct caller *c = &r->c[i];
        if ((c->role != R_REFUSE && c->state != C_CONNECTED) ||
            (c->role == R_REFUSE && c->state != C_REFUSED))
            return 2;
    }
    return 0;
}

void run_free(struct run *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; r->c != NULL && i < r->n; i++) {
        if (r->c[i].sock != SRT_INVALID_SOCK)
            srt_close(r->c[i].sock);
    }
    if (r->eid != SRT_ERROR)
        srt_epoll_release(r->eid);
    free(r->c);
    free(r->events);
    free(r->keys);
    free(r->vals);
    free(r);
}
