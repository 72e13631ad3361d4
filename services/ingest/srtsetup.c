/* The SRT listener's setup and teardown: libsrt's log into ours, the
 * listener's socket and options, the eventfds and the epoll, srtsrv_new() and
 * srtsrv_free(). See srtsrv.h and srtsrv_int.h. */
#include "srtsrv_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/net.h"

#define SRTSRV_TS_PACKET 188

/* ---- libsrt's log into ours --------------------------------------------- */

#define SRT_LOGS_PER_SECOND 20

/* libsrt logs from its own threads, the receive thread included, and some of
 * its lines come once per event (a drop, a refusal): at most
 * SRT_LOGS_PER_SECOND lines a second get through, so a burst cannot flood the
 * log or stall libsrt on a slow stderr; the rest are counted and summed up. */
static atomic_int_fast64_t log_window;
static atomic_uint log_lines, log_suppressed;

static bool srt_log_allowed(void)
{
    int64_t now = clock_mono_ms() / 1000;
    int64_t window = atomic_load(&log_window);
    if (now != window && atomic_compare_exchange_strong(&log_window, &window, now)) {
        unsigned dropped = atomic_exchange(&log_suppressed, 0);
        atomic_store(&log_lines, 0);
        if (dropped > 0)
            log_warn("srt: %u more lines from libsrt were not logged", dropped);
    }
    if (atomic_fetch_add(&log_lines, 1) < SRT_LOGS_PER_SECOND)
        return true;
    atomic_fetch_add(&log_suppressed, 1);
    return false;
}

static void on_srt_log(void *opaque, int level, const char *file, int line, const char *area,
                       const char *message)
{
    (void)opaque;
    (void)file;
    (void)line;
    /* libsrt's notices are the details of every handshake: debug for us; so
     * are the two warnings it writes for every refusal, which we log once */
    enum log_level l = level <= LOG_ERR ? LOGL_ERROR : level == LOG_WARNING ? LOGL_WARN
                                                                            : LOGL_DEBUG;
    if (message == NULL)
        return;
    if (l == LOGL_WARN && (strstr(message, "connection rejected due to") ||
                           strstr(message, "rsp(REJECT)")))
        l = LOGL_DEBUG;
    if (l < log_min_level || !srt_log_allowed())
        return;
    while (*message == ':' || *message == ' ')
        message++;
    size_t len = strlen(message);
    while (len > 0 && (message[len - 1] == '\n' || message[len - 1] == ' '))
        len--;
    char text[600];
    log_write(l, "srt: %s: %s", area ? area : "-", log_escape(text, sizeof(text), message, len));
}

/* What libsrt should produce for our level (its debug level is a flood). */
static int srt_level(enum log_level l)
{
    switch (l) {
    case LOGL_DEBUG: return LOG_NOTICE;
    case LOGL_INFO:
    case LOGL_WARN: return LOG_WARNING;
    default: return LOG_ERR;
    }
}

/* ---- setup -------------------------------------------------------------- */

static int fail(char **err, const char *what, const char *detail)
{
    if (asprintf(err, "srt: %s: %s", what, detail) == -1)
        *err = NULL;
    return -1;
}

static int set_flag(SRTSOCKET sock, SRT_SOCKOPT opt, int value, const char *name, char **err)
{
    if (srt_setsockflag(sock, opt, &value, sizeof(value)) == SRT_ERROR)
        return fail(err, name, srtsrv_error_text());
    return 0;
}

/* The listener's options; accepted sockets inherit them. */
static int configure(struct srtsrv *s, char **err)
{
    const struct srtsrv_options *o = &s->o;
    bool no = false;
    int live = SRTT_LIVE;
    if (srt_setsockflag(s->listener, SRTO_TRANSTYPE, &live, sizeof(live)) == SRT_ERROR ||
        srt_setsockflag(s->listener, SRTO_RCVSYN, &no, sizeof(no)) == SRT_ERROR ||
        srt_setsockflag(s->listener, SRTO_SNDSYN, &no, sizeof(no)) == SRT_ERROR)
        return fail(err, "socket options", srtsrv_error_text());
    if (set_flag(s->listener, SRTO_LATENCY, o->latency_ms, "latency", err) == -1 ||
        set_flag(s->listener, SRTO_PAYLOADSIZE, o->payload_size, "payload size", err) == -1 ||
        set_flag(s->listener, SRTO_PEERIDLETIMEO, o->peer_idle_ms, "peer idle timeout", err) == -1)
        return -1;
    if (o->rcvbuf > 0 &&
        set_flag(s->listener, SRTO_RCVBUF, (int)o->rcvbuf, "receive buffer", err) == -1)
        return -1;
    if (o->udp_rcvbuf > 0 &&
        set_flag(s->listener, SRTO_UDP_RCVBUF, (int)o->udp_rcvbuf, "UDP receive buffer", err) == -1)
        return -1;
    return 0;
}

static int bind_listener(struct srtsrv *s, char **err)
{
    char host[256];
    int port;
    if (net_split_hostport(s->o.listen, host, sizeof(host), &port) == -1)
        return fail(err, s->o.listen, "not host:port");
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, service, &hints, &ai);
    if (rc != 0)
        return fail(err, s->o.listen, gai_strerror(rc));
    s->listener = srt_create_socket();
    int v6only = 0;
    rc = s->listener == SRT_INVALID_SOCK ? -1 : configure(s, err);
    if (rc == 0 && ai->ai_family == AF_INET6)
        srt_setsockflag(s->listener, SRTO_IPV6ONLY, &v6only, sizeof(v6only));
    if (rc == 0 && srt_bind(s->listener, ai->ai_addr, (int)ai->ai_addrlen) == SRT_ERROR)
        rc = fail(err, s->o.listen, srtsrv_error_text());
    freeaddrinfo(ai);
    if (rc == -1)
        return *err ? -1 : fail(err, "socket", srtsrv_error_text());
    struct sockaddr_storage sa;
    int len = sizeof(sa);
    if (srt_getsockname(s->listener, (struct sockaddr *)&sa, &len) == 0)
        s->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                 : ((struct sockaddr_in *)&sa)->sin_port);
    if (srt_listen_callback(s->listener, srtsrv_on_listen, s) == SRT_ERROR ||
        srt_listen(s->listener, s->o.backlog) == SRT_ERROR)
        return fail(err, "listen", srtsrv_error_text());
    s->listening = true;
    return 0;
}

static int setup_polling(struct srtsrv *s, struct event_base *base, char **err)
{
    int in = SRT_EPOLL_IN | SRT_EPOLL_ERR;
    s->cmdfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->cmdfd == -1 || s->wakefd == -1)
        return fail(err, "eventfd", strerror(errno));
    s->wake_ev = event_new(base, s->wakefd, EV_READ | EV_PERSIST, srtsrv_on_wake, s);
    if (s->wake_ev == NULL || event_add(s->wake_ev, NULL) == -1)
        return fail(err, "event", "cannot watch the eventfd");
    s->eid = srt_epoll_create();
    if (s->eid == SRT_ERROR)
        return fail(err, "epoll", srtsrv_error_text());
    srt_epoll_set(s->eid, SRT_EPOLL_ENABLE_EMPTY);
    if (srt_epoll_add_usock(s->eid, s->listener, &in) == SRT_ERROR ||
        srt_epoll_add_ssock(s->eid, s->cmdfd, &in) == SRT_ERROR)
        return fail(err, "epoll", srtsrv_error_text());
    s->ready = calloc(s->o.max_conns + 2, sizeof(*s->ready));
    s->wready = calloc(s->o.max_conns + 2, sizeof(*s->wready));
    s->dirty = calloc(s->o.max_conns + 1, sizeof(*s->dirty));
    s->closing = calloc(s->o.max_conns + 1, sizeof(*s->closing));
    s->senders = calloc(s->o.max_conns + 1, sizeof(*s->senders));
    s->sendlist = calloc(s->o.max_conns + 1, sizeof(*s->sendlist));
    s->msg_size = s->o.payload_size / SRTSRV_TS_PACKET * SRTSRV_TS_PACKET;
    if (s->ready == NULL || s->wready == NULL || s->dirty == NULL || s->closing == NULL ||
        s->senders == NULL || s->sendlist == NULL ||
        srtsrv_map_init(&s->map, s->o.max_conns) == -1)
        return fail(err, "setup", "out of memory");
    return 0;
}

struct srtsrv *srtsrv_new(struct event_base *base, const struct srtsrv_options *o,
                          srtsrv_gate_fn gate, void *gate_arg,
                          const struct srtsrv_handler *h, void *arg, char **err)
{
    *err = NULL;
    struct srtsrv *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->o = *o;
    s->gate = gate;
    s->gate_arg = gate_arg;
    s->h = h;
    s->arg = arg;
    s->listener = SRT_INVALID_SOCK;
    s->eid = SRT_ERROR;
    s->cmdfd = s->wakefd = -1;
    pthread_mutex_init(&s->mu, NULL);
    if (srt_startup() == -1) {
        fail(err, "startup", srtsrv_error_text());
        free(s);
        return NULL;
    }
    srt_setlogflags(SRT_LOGF_DISABLE_TIME | SRT_LOGF_DISABLE_THREADNAME |
                    SRT_LOGF_DISABLE_SEVERITY | SRT_LOGF_DISABLE_EOL);
    srt_setloghandler(NULL, on_srt_log);
    srt_setloglevel(srt_level(log_min_level));
    if (bind_listener(s, err) == -1 || setup_polling(s, base, err) == -1 ||
        pthread_create(&s->thread, NULL, srtsrv_thread, s) != 0) {
        if (*err == NULL)
            fail(err, "thread", strerror(errno));
        srtsrv_free(s);
        return NULL;
    }
    s->thread_started = true;
    return s;
}

static void free_list(struct ev *e)
{
    while (e != NULL) {
        struct ev *next = e->next;
        if (e->kind == QE_CLOSED)
            free(e->conn);           /* forgotten by the thread, not yet by the loop */
        free(e);
        e = next;
    }
}

void srtsrv_free(struct srtsrv *s)
{
    if (s == NULL)
        return;
    if (s->thread_started) {
        srtsrv_command(s, CMD_QUIT, SRT_INVALID_SOCK, 0);
        pthread_join(s->thread, NULL);
    }
    for (size_t i = 0; s->map.vals && i < s->map.cap; i++) {
        struct srtsrv_conn *c = s->map.vals[i];
        if (c != NULL) {
            srt_close(c->sock);
            free(c->chunk);
            free_list(c->sq_head);
            free_list(c->out_head);
            free(c->carry);
            free(c);
        }
    }
    free(s->map.keys);
    free(s->map.vals);
    free(s->ready);
    free(s->wready);
    free(s->dirty);
    free(s->closing);
    free(s->senders);
    free(s->sendlist);
    if (s->listener != SRT_INVALID_SOCK)
        srt_close(s->listener);
    if (s->eid != SRT_ERROR)
        srt_epoll_release(s->eid);
    free_list(s->out_head);
    free_list(s->head);
    free_list(s->free_chunks);
    free(s->cmds);
    if (s->wake_ev)
        event_free(s->wake_ev);
    if (s->cmdfd != -1)
        close(s->cmdfd);
    if (s->wakefd != -1)
        close(s->wakefd);
    pthread_mutex_destroy(&s->mu);
    srt_cleanup();
    srt_setloghandler(NULL, NULL);
    free(s);
}
