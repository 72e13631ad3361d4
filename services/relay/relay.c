/* The relay: listener, tick, graceful stop. See relay.h. */
#include "relay.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conn.h"
#include "known.h"
#include "registry.h"
#include "status.h"
#include "stream.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/log.h"
#include "sluice/net.h"
#include "sluice/redis.h"
#include "sluice/slp.h"

#define TICK_MS 250              /* timeouts, keepalive, cut-offs, graces */
#define ACCEPT_PAUSE_MS 500      /* after accept(2) fails (out of descriptors) */
#define BACKLOG 1024

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
                      int len, void *arg)
{
    (void)l;
    conn_accept(arg, fd, addr, (socklen_t)len);
}

static void on_resume_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct relay *r = arg;
    if (r->listener != NULL && !r->stopping)
        evconnlistener_enable(r->listener);
}

/* accept(2) failed, most likely EMFILE: the listening socket stays readable,
 * so pause it a moment rather than spin. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    struct relay *r = arg;
    int err = EVUTIL_SOCKET_ERROR();
    log_warn("accept: %s; pausing the listener for %d ms", evutil_socket_error_to_string(err),
             ACCEPT_PAUSE_MS);
    evconnlistener_disable(l);
    struct timeval tv = clock_tv_ms(ACCEPT_PAUSE_MS);
    event_base_once(r->d->base, -1, EV_TIMEOUT, on_resume_accept, r, &tv);
}

static int listen_on(struct relay *r, const char *addr)
{
    char host[256], port[16];
    int p;
    if (net_split_hostport(addr, host, sizeof(host), &p) == -1) {
        log_error("listen: \"%s\" is not host:port", addr);
        return -1;
    }
    snprintf(port, sizeof(port), "%d", p);
    struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                     .ai_flags = EVUTIL_AI_PASSIVE }, *ai = NULL;
    int rc = evutil_getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        log_error("listen %s: %s", addr, evutil_gai_strerror(rc));
        return -1;
    }
    r->listener = evconnlistener_new_bind(r->d->base, on_accept, r,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                          LEV_OPT_CLOSE_ON_EXEC, BACKLOG, ai->ai_addr,
                                          (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (r->listener == NULL) {
        log_error("cannot listen on %s: %s", addr, strerror(errno));
        return -1;
    }
    evconnlistener_set_error_cb(r->listener, on_accept_error);
    return 0;
}

/* What others dial: the advertise option, or the listen address with a
 * wildcard host replaced by the host name and port 0 by the bound port. */
static void set_advertise(struct relay *r)
{
    char host[256];
    int port = 0;
    if (r->cfg->advertise[0] != '\0') {
        snprintf(r->advertise, sizeof(r->advertise), "%s", r->cfg->advertise);
        return;
    }
    net_split_hostport(r->cfg->listen, host, sizeof(host), &port);
    if (port == 0)
        port = net_local_port(evconnlistener_get_fd(r->listener));
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) {
        if (gethostname(host, sizeof(host) - 1) == -1)
            snprintf(host, sizeof(host), "%s", r->d->node_id);
        host[sizeof(host) - 1] = '\0';
    }
    snprintf(r->advertise, sizeof(r->advertise), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
             port);
}

/* Enough descriptors for max-connections (the soft limit is often 1024). */
static void raise_nofile(const struct relay_config *cfg)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)cfg->max_connections + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur < want)
        log_warn("open files limit %llu is below max-connections + 64",
                 (unsigned long long)rl.rlim_cur);
}

static void tick_stream(struct stream *s, void *arg)
{
    stream_tick(s, *(int64_t *)arg);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct relay *r = arg;
    int64_t now = clock_mono_ms();
    for (struct conn *c = r->conns, *next; c != NULL; c = next) {
        next = c->next;
        conn_tick(c, now);
    }
    stream_foreach(r, tick_stream, &now);
    known_expire(&r->known, now);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_reap(arg);
}

struct relay *relay_new(struct daemon *d, const struct relay_config *cfg)
{
    struct relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->d = d;
    r->cfg = cfg;
    raise_nofile(cfg);
    /* a name per connection the relay may have: as many as can publish at once */
    known_init(&r->known, (size_t)cfg->max_connections, cfg->known_publisher_ttl_ms);
    struct redis_options ro = { .url = d->common.redis_url };
    r->tick = event_new(d->base, -1, EV_PERSIST, on_tick, r);
    r->reaper = event_new(d->base, -1, 0, on_reap, r);
    if (r->tick == NULL || r->reaper == NULL || status_metrics(r) == -1 ||
        (r->redis = redis_new(d->base, d->dns, &ro)) == NULL ||
        (r->reg = registry_new(r)) == NULL || listen_on(r, cfg->listen) == -1 ||
        status_start(r) == -1) {
        relay_free(r);
        return NULL;
    }
    set_advertise(r);
    struct timeval tv = clock_tv_ms(TICK_MS);
    event_add(r->tick, &tv);
    log_info("relay %s: SLP on %s (advertised as %s), max-queue %lld, gop-cache-max %lld",
             d->node_id, cfg->listen, r->advertise, (long long)cfg->max_queue,
             (long long)cfg->gop_cache_max);
    return r;
}

void relay_check_drained(struct relay *r)
{
    if (r->held && r->nconns == 0 && !registry_busy(r->reg)) {
        r->held = false;
        daemon_release(r->d);
    }
}

static void stop_stream(struct stream *s, void *arg)
{
    (void)arg;
    struct slp_frame eos = { .type = SLP_EOS, .eos = {
        SLP_EOS_SHUTDOWN, slp_cstr("relay shutting down") } };
    stream_end(s, &eos, "shutdown");
}

void relay_stop(void *arg)
{
    struct relay *r = arg;
    r->stopping = true;
    if (r->listener != NULL)
        evconnlistener_disable(r->listener);
    log_info("stopping: %u connections, %u streams", r->nconns, r->nstreams);
    registry_stop(r->reg);
    stream_foreach(r, stop_stream, NULL);
    for (struct conn *c = r->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->state < CONN_CLOSING)
            conn_error(c, SLP_E_GOING_AWAY, "relay shutting down");
    }
    daemon_hold(r->d);
    r->held = true;
    relay_check_drained(r);
}

void relay_free(struct relay *r)
{
    if (r == NULL)
        return;
    conn_free_all(r);             /* lease lookups in flight now find nobody */
    if (r->redis != NULL)
        redis_free(r->redis);     /* callbacks run "cancelled" */
    registry_free(r->reg);
    stream_free_all(r);
    known_fini(&r->known);
    if (r->listener != NULL)
        evconnlistener_free(r->listener);
    if (r->tick != NULL)
        event_free(r->tick);
    if (r->reaper != NULL)
        event_free(r->reaper);
    free(r);
}
