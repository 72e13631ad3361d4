/* Redis glue on hiredis 0.14: see redis.h. Connection handling is here;
 * the lease scripts are in redis_lease.c. */
#include "redis_int.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/net.h"

/* A command waiting for its reply. */
struct pending {
    struct redis *r;
    redis_reply_cb cb;
    void *arg;
    struct event *timer;
    bool done;          /* the callback already ran (timeout) */
};

struct subscription {
    struct redis *r;
    char *channel;
    redis_message_cb on_msg;
    redis_subscribed_cb on_subscribed;
    void *arg;
    struct subscription *next;
};

static void conn_start(struct conn *c);
static void conn_drop(struct conn *c, const char *why);

/* ---- URL ---------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A malloc'd copy of <s> with %XX decoded (RFC 3986 user info: a password may
 * hold '@' or ':' only encoded), or NULL when malformed, holding a NUL, or out
 * of memory. */
static char *userinfo_decode(const char *s)
{
    char *out = malloc(strlen(s) + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (; *s; s++) {
        int hi, lo;
        if (*s != '%') {
            *o++ = *s;
        } else if ((hi = hexval(s[1])) >= 0 && (lo = hexval(s[2])) >= 0 && (hi | lo) != 0) {
            *o++ = (char)(hi << 4 | lo);
            s += 2;
        } else {
            free(out);
            return NULL;
        }
    }
    *o = '\0';
    return out;
}

/* Parses redis://[[user]:password@]host[:port][/db]; user and password may
 * be percent-encoded. */
static int parse_url(struct redis *r, const char *url)
{
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    char *rest = strdup(url + 8), *hostpart = rest;
    if (rest == NULL)
        return -1;
    char *at = strrchr(rest, '@');
    if (at != NULL) {
        *at = '\0';
        hostpart = at + 1;
        char *colon = strchr(rest, ':');
        if (colon == NULL)
            goto fail;
        *colon = '\0';
        r->password = userinfo_decode(colon + 1);
        if (r->password == NULL || (rest[0] && (r->user = userinfo_decode(rest)) == NULL))
            goto fail;   /* never go on without the AUTH that was asked for */
    }
    char *slash = strchr(hostpart, '/');
    if (slash != NULL) {
        *slash = '\0';
        int64_t db = 0;
        if (slash[1] && config_parse_int(slash + 1, 0, 1000, &db) == -1)
            goto fail;
        r->db = (int)db;
    }
    if (hostpart[0] == '\0' || hostpart[0] == ':')
        goto fail;
    char hp[300];
    snprintf(hp, sizeof(hp), "%s%s", hostpart,
             strchr(hostpart, ':') && hostpart[strlen(hostpart) - 1] != ']' ? "" : ":6379");
    if (net_split_hostport(hp, r->host, sizeof(r->host), &r->port) == -1 || !r->host[0])
        goto fail;
    free(rest);
    return 0;
fail:
    free(rest);
    return -1;
}

/* <url> for a log line, escaped, with anything before its last '@' (the user
 * and password) masked: a URL refused for a typo must not put its password
 * in the logs. */
static const char *url_redacted(char *dst, size_t dstlen, const char *url)
{
    const char *at = strrchr(url, '@');
    if (at == NULL)
        return log_escape(dst, dstlen, url, strlen(url));
    size_t scheme = strncmp(url, "redis://", 8) == 0 ? 8 : 0;
    int n = snprintf(dst, dstlen, "%.*s***@", (int)scheme, url);
    if (n < 0 || (size_t)n >= dstlen)
        return dst;
    log_escape(dst + n, dstlen - (size_t)n, at + 1, strlen(at + 1));
    return dst;
}

/* ---- connection state --------------------------------------------------- */

static void set_up(struct redis *r, bool up)
{
    if (r->up == up)
        return;
    r->up = up;
    log_info("redis %s:%d: %s", r->host, r->port, up ? "connected" : "disconnected");
    if (r->state_cb)
        r->state_cb(up, r->state_arg);
}

static void schedule_retry(struct conn *c)
{
    struct redis *r = c->r;
    if (r->freeing)
        return;
    c->state = CONN_WAITING;
    struct timeval tv = clock_tv_ms(c->backoff_ms);
    evtimer_add(c->timer, &tv);
    c->backoff_ms = c->backoff_ms * 2 > r->opts.backoff_max_ms ? r->opts.backoff_max_ms
                                                               : c->backoff_ms * 2;
}

/* The connection is gone (or never came): forget it and try again later. */
static void conn_lost(struct conn *c)
{
    c->ac = NULL;
    if (c == &c->r->cmd) {
        set_up(c->r, false);
        /* a Redis that stopped answering commands has likely stopped sending
         * messages too: resubscribe (and so make subscribers reload) */
        if (c->r->sub.state == CONN_UP)
            conn_drop(&c->r->sub, "command connection lost");
    }
    schedule_retry(c);
}

static void conn_drop(struct conn *c, const char *why)
{
    if (c->ac == NULL)
        return;
    redisAsyncContext *ac = c->ac;
    log_warn("redis %s:%d: dropping %s connection: %s", c->r->host, c->r->port,
             c == &c->r->sub ? "subscriber" : "command", why);
    c->ac = NULL;             /* on_disconnect sees it is not ours any more */
    c->state = CONN_DOWN;
    redisAsyncFree(ac);       /* runs pending callbacks with NULL */
    conn_lost(c);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct conn *c = ac->data;
    if (c == NULL || c->ac != ac)
        return;   /* we dropped it ourselves */
    if (!c->r->freeing)
        log_warn("redis %s:%d: connection closed%s%s", c->r->host, c->r->port,
                 status == REDIS_OK ? "" : ": ", status == REDIS_OK ? "" : ac->errstr);
    c->state = CONN_DOWN;
    conn_lost(c);
}

static void subscribe_all(struct conn *c);

/* AUTH and SELECT are done; the connection is usable. */
static void conn_ready(struct conn *c)
{
    c->state = CONN_UP;
    c->backoff_ms = c->r->opts.backoff_min_ms;
    if (c == &c->r->cmd)
        set_up(c->r, true);
    else
        subscribe_all(c);
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct conn *c = priv;
    redisReply *rep = reply;
    if (c->ac != ac || c->state != CONN_SETUP)
        return;
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        log_error("redis %s:%d: AUTH/SELECT failed: %s", c->r->host, c->r->port,
                  rep ? rep->str : "no reply");
        conn_drop(c, "setup failed");
        return;
    }
    if (--c->setup_left == 0) {
        evtimer_del(c->timer);
        conn_ready(c);
    }
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    struct conn *c = cac->data;
    if (c == NULL || c->ac != cac)
        return;
    struct redis *r = c->r;
    if (status != REDIS_OK) {
        log_warn("redis %s:%d: cannot connect: %s", r->host, r->port, cac->errstr);
        evtimer_del(c->timer);
        c->state = CONN_DOWN;
        conn_lost(c);   /* hiredis frees the context after this callback */
        return;
    }
    redisAsyncContext *ac = c->ac;
    c->state = CONN_SETUP;
    c->setup_left = 0;
    if (r->password != NULL) {
        c->setup_left++;
        if (r->user)
            redisAsyncCommand(ac, on_setup_reply, c, "AUTH %s %s", r->user, r->password);
        else
            redisAsyncCommand(ac, on_setup_reply, c, "AUTH %s", r->password);
    }
    if (r->db != 0) {
        c->setup_left++;
        redisAsyncCommand(ac, on_setup_reply, c, "SELECT %d", r->db);
    }
    if (c->setup_left == 0) {
        evtimer_del(c->timer);
        conn_ready(c);
    }
}

static void connect_to(struct conn *c, const char *ip)
{
    struct redis *r = c->r;
    redisAsyncContext *ac = redisAsyncConnect(ip, r->port);
    if (ac == NULL || ac->err) {
        log_warn("redis %s:%d: cannot connect: %s", r->host, r->port,
                 ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        c->state = CONN_DOWN;
        conn_lost(c);
        return;
    }
    ac->data = c;
    c->ac = ac;
    c->state = CONN_CONNECTING;
    redisLibeventAttach(ac, r->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    struct timeval tv = clock_tv_ms(r->opts.connect_timeout_ms);
    evtimer_add(c->timer, &tv);
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct conn *c = arg;
    c->dnsreq = NULL;
    if (result == EVUTIL_EAI_CANCEL)
        return;
    if (result != 0 || res == NULL) {
        log_warn("redis %s: cannot resolve: %s", c->r->host, evutil_gai_strerror(result));
        c->state = CONN_DOWN;
        conn_lost(c);
        return;
    }
    char ip[INET6_ADDRSTRLEN];
    const void *a = res->ai_family == AF_INET6
        ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
        : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
    evutil_inet_ntop(res->ai_family, a, ip, sizeof(ip));
    evutil_freeaddrinfo(res);
    connect_to(c, ip);
}

static bool is_ip(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void conn_start(struct conn *c)
{
    struct redis *r = c->r;
    if (r->freeing || c->state != CONN_DOWN)
        return;
    if (is_ip(r->host) || r->dns == NULL) {
        connect_to(c, r->host);
        return;
    }
    c->state = CONN_RESOLVING;
    struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct evdns_getaddrinfo_request *q =
        evdns_getaddrinfo(r->dns, r->host, NULL, &hints, on_resolved, c);
    if (c->state == CONN_RESOLVING)   /* not answered synchronously */
        c->dnsreq = q;
}

/* The connect timeout, or the end of a backoff wait. */
static void on_conn_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->state == CONN_WAITING) {
        c->state = CONN_DOWN;
        conn_start(c);
    } else if (c->ac != NULL) {
        conn_drop(c, "connect timeout");
    }
}

/* ---- commands ----------------------------------------------------------- */

static void pending_free(struct pending *p)
{
    p->r->npending--;
    event_free(p->timer);
    free(p);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    struct pending *p = priv;
    redisReply *rep = reply;
    if (!p->done && p->cb != NULL) {
        const char *err = NULL;
        if (rep == NULL)
            err = p->r->freeing ? "cancelled" : "disconnected";
        else if (rep->type == REDIS_REPLY_ERROR)
            err = rep->str;
        p->cb(err ? NULL : (const struct redis_reply *)rep, err, p->arg);
    }
    pending_free(p);
}

static void on_command_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pending *p = arg;
    struct redis *r = p->r;
    redis_reply_cb cb = p->cb;
    void *cbarg = p->arg;
    p->done = true;
    conn_drop(&r->cmd, "command timeout");   /* frees p through on_reply */
    if (cb != NULL)
        cb(NULL, "timeout", cbarg);
}

static struct pending *pending_new(struct redis *r, redis_reply_cb cb, void *arg)
{
    if (!r->up || r->cmd.ac == NULL || r->npending >= r->opts.max_pending)
        return NULL;
    struct pending *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->r = r;
    p->cb = cb;
    p->arg = arg;
    p->timer = evtimer_new(r->base, on_command_timeout, p);
    if (p->timer == NULL) {
        free(p);
        return NULL;
    }
    r->npending++;
    return p;
}

static void pending_start(struct pending *p)
{
    struct timeval tv = clock_tv_ms(p->r->opts.command_timeout_ms);
    evtimer_add(p->timer, &tv);
}

int redis_command(struct redis *r, redis_reply_cb cb, void *arg, const char *fmt, ...)
{
    struct pending *p = pending_new(r, cb, arg);
    if (p == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(r->cmd.ac, on_reply, p, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        pending_free(p);
        return -1;
    }
    pending_start(p);
    return 0;
}

int redis_commandv(struct redis *r, redis_reply_cb cb, void *arg, int argc,
                   const char **argv, const size_t *argvlen)
{
    struct pending *p = pending_new(r, cb, arg);
    if (p == NULL)
        return -1;
    if (redisAsyncCommandArgv(r->cmd.ac, on_reply, p, argc, argv, argvlen) != REDIS_OK) {
        pending_free(p);
        return -1;
    }
    pending_start(p);
    return 0;
}

static void on_ping(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis *r = arg;
    if (r->up)
        redis_command(r, NULL, NULL, "PING");
    struct timeval tv = clock_tv_ms(r->opts.ping_interval_ms);
    evtimer_add(r->ping_timer, &tv);
}

/* ---- pub/sub ------------------------------------------------------------ */

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct subscription *s = priv;
    redisReply *rep = reply;
    if (rep == NULL || s->r->sub.ac != ac || rep->type != REDIS_REPLY_ARRAY ||
        rep->elements < 3 || rep->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = rep->element[0]->str;
    if (strcmp(kind, "subscribe") == 0) {
        log_info("redis: subscribed to %s", s->channel);
        if (s->on_subscribed)
            s->on_subscribed(s->arg);
    } else if (strcmp(kind, "message") == 0 &&
               rep->element[2]->type == REDIS_REPLY_STRING) {
        s->on_msg(s->channel, rep->element[2]->str, rep->element[2]->len, s->arg);
    }
}

static void subscribe_one(struct conn *c, struct subscription *s)
{
    redisAsyncCommand(c->ac, on_sub_reply, s, "SUBSCRIBE %s", s->channel);
}

static void subscribe_all(struct conn *c)
{
    for (struct subscription *s = c->r->subs; s; s = s->next)
        subscribe_one(c, s);
}

int redis_subscribe(struct redis *r, const char *channel, redis_message_cb on_msg,
                    redis_subscribed_cb on_subscribed, void *arg)
{
    struct subscription *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->channel = strdup(channel)) == NULL) {
        free(s);
        return -1;
    }
    s->r = r;
    s->on_msg = on_msg;
    s->on_subscribed = on_subscribed;
    s->arg = arg;
    s->next = r->subs;
    r->subs = s;
    if (r->sub.state == CONN_UP)
        subscribe_one(&r->sub, s);
    else
        conn_start(&r->sub);
    return 0;
}

/* ---- life --------------------------------------------------------------- */

static int conn_init(struct redis *r, struct conn *c)
{
    c->r = r;
    c->state = CONN_DOWN;
    c->backoff_ms = r->opts.backoff_min_ms;
    c->timer = evtimer_new(r->base, on_conn_timer, c);
    return c->timer ? 0 : -1;
}

static void conn_fini(struct conn *c)
{
    if (c->dnsreq) {
        evdns_getaddrinfo_cancel(c->dnsreq);
        c->dnsreq = NULL;
    }
    if (c->ac) {
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        redisAsyncFree(ac);
    }
    if (c->timer)
        event_free(c->timer);
}

static void set_defaults(struct redis_options *o)
{
    if (!o->connect_timeout_ms) o->connect_timeout_ms = 2000;
    if (!o->command_timeout_ms) o->command_timeout_ms = 2000;
    if (!o->max_pending) o->max_pending = 10000;
    if (!o->backoff_min_ms) o->backoff_min_ms = 100;
    if (!o->backoff_max_ms) o->backoff_max_ms = 5000;
    if (!o->ping_interval_ms) o->ping_interval_ms = 2000;
}

struct redis *redis_new(struct event_base *base, struct evdns_base *dns,
                        const struct redis_options *opts)
{
    struct redis *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->base = base;
    r->dns = dns;
    r->opts = *opts;
    r->opts.url = NULL;
    set_defaults(&r->opts);
    if (opts->url == NULL || parse_url(r, opts->url) == -1) {
        char safe[128];
        log_error("redis: bad URL \"%s\" (want redis://[[user]:password@]host[:port][/db])",
                  url_redacted(safe, sizeof(safe), opts->url ? opts->url : ""));
        redis_free(r);
        return NULL;
    }
    r->ping_timer = evtimer_new(base, on_ping, r);
    if (r->ping_timer == NULL || conn_init(r, &r->cmd) == -1 ||
        conn_init(r, &r->sub) == -1) {
        redis_free(r);
        return NULL;
    }
    struct timeval tv = clock_tv_ms(r->opts.ping_interval_ms);
    evtimer_add(r->ping_timer, &tv);
    conn_start(&r->cmd);
    return r;
}

void redis_free(struct redis *r)
{
    if (r == NULL)
        return;
    r->freeing = true;
    conn_fini(&r->cmd);
    conn_fini(&r->sub);
    if (r->ping_timer)
        event_free(r->ping_timer);
    while (r->subs) {
        struct subscription *s = r->subs;
        r->subs = s->next;
        free(s->channel);
        free(s);
    }
    free(r->user);
    free(r->password);
    free(r);
}

void redis_set_state_cb(struct redis *r, redis_state_cb cb, void *arg)
{
    r->state_cb = cb;
    r->state_arg = arg;
}

bool redis_is_up(const struct redis *r)
{
    return r->up;
}

unsigned redis_pending(const struct redis *r)
{
    return r->npending;
}

/* ---- replies ------------------------------------------------------------ */

enum redis_reply_type redis_reply_type(const struct redis_reply *rr)
{
    const redisReply *r = (const redisReply *)rr;
    switch (r->type) {
    case REDIS_REPLY_STRING: return REDIS_R_STRING;
    case REDIS_REPLY_ARRAY: return REDIS_R_ARRAY;
    case REDIS_REPLY_INTEGER: return REDIS_R_INTEGER;
    case REDIS_REPLY_STATUS: return REDIS_R_STATUS;
    case REDIS_REPLY_ERROR: return REDIS_R_ERROR;
    default: return REDIS_R_NIL;
    }
}

const char *redis_reply_str(const struct redis_reply *rr, size_t *len)
{
    const redisReply *r = (const redisReply *)rr;
    bool text = r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
                r->type == REDIS_REPLY_ERROR;
    if (len)
        *len = text ? r->len : 0;
    return text ? r->str : NULL;
}

long long redis_reply_int(const struct redis_reply *rr)
{
    const redisReply *r = (const redisReply *)rr;
    return r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
}

size_t redis_reply_len(const struct redis_reply *rr)
{
    const redisReply *r = (const redisReply *)rr;
    return r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
}

const struct redis_reply *redis_reply_at(const struct redis_reply *rr, size_t i)
{
    const redisReply *r = (const redisReply *)rr;
    if (r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return NULL;
    return (const struct redis_reply *)r->element[i];
}
