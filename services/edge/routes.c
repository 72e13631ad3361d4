/* Routes from Redis, remembered: see routes.h. */
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/redis.h"
#include "record.h"
#include "stats.h"
#include "table.h"

#define EVICT_SCAN 16   /* LRU entries looked at to make room for a new route */

struct waiter {
    route_cb cb;
    void *arg;
    struct waiter *next;
};

struct route {
    struct table_node node;
    struct route *prev, *next;      /* LRU, most recently used first */
    struct routes *rt;
    enum edge_ns ns;
    char name[STREAM_NAME_MAX + 1];
    char key[8 + STREAM_NAME_MAX];  /* "live/<name>", the index key */
    char url[ORIGIN_URL_MAX + 1];   /* "" when none is known */
    int64_t confirmed;              /* when Redis last gave <url> (ms) */
    int64_t absent_until;           /* known absent until then (url "") */
    bool looking;                   /* a GET is pending in Redis */
    bool overdue;                   /* ... and its waiters were answered anyway */
    bool suspect;                   /* the origin failed: ask Redis before reuse */
    bool bad_logged;
    int64_t live_at;                /* a media playlist without EXT-X-ENDLIST came (ms) */
    int64_t held_until;             /* the key vanished while live: held until then */
    int64_t held_checked;           /* ... and Redis last said so then */
    struct event *timer;            /* the lookup timeout */
    struct waiter *waiters;
};

struct routes {
    struct event_base *base;
    struct redis *redis;
    struct route_options o;
    struct edge_stats *st;
    struct table index;
    struct route *head, *tail;
    int64_t up_since;               /* ms; 0 while Redis is down */
};

static void count(struct routes *rt, enum route_lookup what)
{
    if (rt->st)
        metric_add(rt->st->lookup[what], 1);
}

/* ---- the table ----------------------------------------------------------- */

static void lru_unlink(struct routes *rt, struct route *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        rt->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        rt->tail = r->prev;
    r->prev = r->next = NULL;
}

static void lru_push(struct routes *rt, struct route *r)
{
    r->next = rt->head;
    if (rt->head)
        rt->head->prev = r;
    else
        rt->tail = r;
    rt->head = r;
}

static void route_free(struct routes *rt, struct route *r)
{
    table_remove(&rt->index, &r->node);
    lru_unlink(rt, r);
    if (r->timer)
        event_free(r->timer);
    free(r);
}

static bool evictable(const struct route *r)
{
    return !r->looking && r->waiters == NULL;
}

static bool make_room(struct routes *rt)
{
    struct route *r = rt->tail;
    for (int i = 0; r != NULL && i < EVICT_SCAN; i++, r = r->prev) {
        if (evictable(r)) {
            route_free(rt, r);
            return true;
        }
    }
    return false;
}

static void on_lookup_timeout(evutil_socket_t fd, short what, void *arg);

/* The route for <ns>/<name> if there is one; its key goes into <key>
 * (ROUTE_KEY_MAX bytes), its length into *<klen>. */
#define ROUTE_KEY_MAX sizeof(((struct route *)0)->key)
static struct route *route_find(struct routes *rt, enum edge_ns ns, const char *name,
                                char *key, int *klen)
{
    *klen = snprintf(key, ROUTE_KEY_MAX, "%s/%s", edge_ns_name(ns), name);
    struct table_node *n = table_find(&rt->index, key, (size_t)*klen);
    return n != NULL ? container_of(n, struct route, node) : NULL;
}

/* The route for <ns>/<name>, made if needed; NULL with *<full> when the table
 * is full of routes in use, or on allocation failure. */
static struct route *route_get(struct routes *rt, enum edge_ns ns, const char *name,
                               bool *full)
{
    char key[ROUTE_KEY_MAX];
    int klen;
    *full = false;
    struct route *r = route_find(rt, ns, name, key, &klen);
    if (r != NULL) {
        lru_unlink(rt, r);
        lru_push(rt, r);
        return r;
    }
    if (rt->index.count >= rt->o.max_routes && !make_room(rt)) {
        *full = true;
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->rt = rt;
    r->ns = ns;
    snprintf(r->name, sizeof(r->name), "%s", name);
    memcpy(r->key, key, (size_t)klen + 1);
    r->timer = evtimer_new(rt->base, on_lookup_timeout, r);
    if (r->timer == NULL || table_insert(&rt->index, &r->node, r->key, (size_t)klen) == -1) {
        if (r->timer)
            event_free(r->timer);
        free(r);
        return NULL;
    }
    lru_push(rt, r);
    return r;
}

/* ---- answers ------------------------------------------------------------- */

/* Answers every waiter of <r> with <res>. The callbacks may resolve again, and
 * so even drop <r>: nothing of <r> is used once they start. */
static void answer(struct route *r, const struct route_result *res)
{
    struct waiter *w = r->waiters;
    r->waiters = NULL;
    char url[ORIGIN_URL_MAX + 1];
    struct route_result copy = *res;
    if (res->url) {
        snprintf(url, sizeof(url), "%s", res->url);
        copy.url = url;
    }
    while (w) {
        struct waiter *next = w->next;
        w->cb(&copy, w->arg);
        free(w);
        w = next;
    }
}

/* Redis cannot say: the remembered route while it is young enough, or none. */
static void answer_fallback(struct routes *rt, struct route *r, const char *why)
{
    int64_t now = clock_mono_ms();
    if (r->url[0] && now - r->confirmed < rt->o.stale_ms) {
        count(rt, RL_REMEMBERED);
        answer(r, &(struct route_result){ ROUTE_FOUND, r->url, .remembered = true });
    } else {
        answer(r, &(struct route_result){ ROUTE_UNAVAILABLE, .why = why });
    }
}

/* Whether <r>, whose key Redis just said is gone, is to be held (routes.h):
 * the hold starts at the first such answer after a live playlist came less
 * than <vanish_grace> ago, and lasts <vanish_grace>. */
static bool held(struct routes *rt, struct route *r, int64_t now)
{
    if (r->held_until == 0) {
        if (!r->url[0] || rt->o.vanish_grace_ms <= 0 || r->live_at == 0 ||
            now - r->live_at >= rt->o.vanish_grace_ms)
            return false;
        r->held_until = now + rt->o.vanish_grace_ms;
        log_warn("%s: no longer in Redis while live (was %s): kept for %lld ms "
                 "(an origin failover?)", r->key, r->url, (long long)rt->o.vanish_grace_ms);
    }
    return now < r->held_until;
}

static void on_nil(struct routes *rt, struct route *r, int64_t now)
{
    /* Redis came back (empty, if it restarted) less than <grace> ago and this
     * route was known from before: discovery may not have written it again yet.
     * A route confirmed since then is not protected: its key really went. */
    bool grace = rt->up_since != 0 && now - rt->up_since < rt->o.grace_ms &&
                 r->confirmed < rt->up_since;
    if (r->url[0] && grace && now - r->confirmed < rt->o.stale_ms) {
        count(rt, RL_REMEMBERED);
        answer(r, &(struct route_result){ ROUTE_FOUND, r->url, .remembered = true });
        return;
    }
    if (held(rt, r, now)) {
        r->held_checked = now;
        r->suspect = false;
        count(rt, RL_HELD);
        answer(r, &(struct route_result){ ROUTE_FOUND, r->url, .remembered = true });
        return;
    }
    if (r->url[0])
        log_info("%s: no longer in Redis (was %s)", r->key, r->url);
    r->url[0] = '\0';
    r->suspect = false;
    r->live_at = r->held_until = 0;
    r->absent_until = now + rt->o.negative_ttl_ms;
    count(rt, RL_ABSENT);
    answer(r, &(struct route_result){ ROUTE_ABSENT });
}

static void on_record(struct routes *rt, struct route *r, const char *s, size_t len,
                      int64_t now)
{
    char url[ORIGIN_URL_MAX + 1], why[200];
    if (route_record_parse(s, len, url, why, sizeof(why)) == -1) {
        if (!r->bad_logged) {
            log_warn("%s: malformed route record in Redis: %s", r->key, why);
            r->bad_logged = true;
        }
        count(rt, RL_ERROR);
        answer(r, &(struct route_result){ ROUTE_UNAVAILABLE, .bad_record = true,
                                          .why = "malformed route record" });
        return;
    }
    if (strcmp(url, r->url) != 0)
        log_info("%s: origin %s%s%s%s", r->key, url, r->url[0] ? " (was " : "",
                 r->url, r->url[0] ? ")" : "");
    if (r->held_until != 0)
        log_info("%s: back in Redis after %lld ms held", r->key,
                 (long long)(now - (r->held_until - rt->o.vanish_grace_ms)));
    r->held_until = 0;
    memcpy(r->url, url, sizeof(url));
    r->bad_logged = false;
    r->confirmed = now;
    r->absent_until = 0;
    r->suspect = false;
    count(rt, RL_FOUND);
    answer(r, &(struct route_result){ ROUTE_FOUND, r->url });
}

static void on_reply(const struct redis_reply *reply, const char *err, void *arg)
{
    struct route *r = arg;
    struct routes *rt = r->rt;
    bool overdue = r->overdue;
    r->looking = false;
    r->overdue = false;
    evtimer_del(r->timer);
    int64_t now = clock_mono_ms();
    if (err != NULL) {
        count(rt, RL_ERROR);
        log_debug("%s: lookup failed: %s", r->key, err);
        if (!overdue)
            answer_fallback(rt, r, "Redis unreachable");
        return;
    }
    enum redis_reply_type type = redis_reply_type(reply);
    if (type == REDIS_R_NIL) {
        on_nil(rt, r, now);
    } else if (type == REDIS_R_STRING) {
        size_t len;
        const char *s = redis_reply_str(reply, &len);
        on_record(rt, r, s, len, now);
    } else {
        count(rt, RL_ERROR);
        answer(r, &(struct route_result){ ROUTE_UNAVAILABLE, .bad_record = true,
                                          .why = "unexpected reply type" });
    }
}

static void on_lookup_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct route *r = arg;
    r->overdue = true;
    answer_fallback(r->rt, r, "Redis did not answer in time");
}

static void start_lookup(struct routes *rt, struct route *r)
{
    const char *prefix = r->ns == NS_VOD ? "sluice:vod:" : "sluice:origin:";
    if (redis_command(rt->redis, on_reply, r, "GET %s%s", prefix, r->name) == -1) {
        count(rt, RL_ERROR);
        answer_fallback(rt, r, "Redis unreachable");
        return;
    }
    r->looking = true;
    r->overdue = false;
    struct timeval tv = clock_tv_ms(rt->o.lookup_timeout_ms);
    evtimer_add(r->timer, &tv);
}

/* ---- interface ----------------------------------------------------------- */

struct routes *routes_new(struct event_base *base, struct redis *redis,
                          const struct route_options *o, struct edge_stats *st)
{
    struct routes *rt = calloc(1, sizeof(*rt));
    if (rt == NULL)
        return NULL;
    rt->base = base;
    rt->redis = redis;
    rt->o = *o;
    rt->st = st;
    table_init(&rt->index);
    return rt;
}

void routes_free(struct routes *rt)
{
    if (rt == NULL)
        return;
    while (rt->head) {
        struct route *r = rt->head;
        answer(r, &(struct route_result){ ROUTE_UNAVAILABLE, .why = "shutting down" });
        if (rt->head == r)
            route_free(rt, r);
    }
    table_release(&rt->index);
    free(rt);
}

int routes_resolve(struct routes *rt, enum edge_ns ns, const char *name, route_cb cb,
                   void *arg)
{
    bool full;
    struct route *r = route_get(rt, ns, name, &full);
    if (r == NULL && full) {
        cb(&(struct route_result){ ROUTE_UNAVAILABLE, .why = "too many routes in use" }, arg);
        return 0;
    }
    if (r == NULL)
        return -1;
    int64_t now = clock_mono_ms();
    if (!r->url[0] && now < r->absent_until) {
        cb(&(struct route_result){ ROUTE_ABSENT }, arg);
        return 0;
    }
    if (r->url[0] && !r->suspect && now - r->confirmed < rt->o.ttl_ms) {
        cb(&(struct route_result){ ROUTE_FOUND, r->url }, arg);
        return 0;
    }
    if (r->url[0] && now < r->held_until && now - r->held_checked < rt->o.ttl_ms) {
        count(rt, RL_HELD);   /* held, and Redis said it is still gone just now */
        cb(&(struct route_result){ ROUTE_FOUND, r->url, .remembered = true }, arg);
        return 0;
    }
    struct waiter *w = malloc(sizeof(*w));
    if (w == NULL)
        return -1;
    *w = (struct waiter){ cb, arg, r->waiters };
    r->waiters = w;
    if (r->looking && r->overdue)
        answer_fallback(rt, r, "Redis did not answer in time");
    else if (!r->looking)
        start_lookup(rt, r);
    return 0;
}

void routes_redis_state(struct routes *rt, bool up)
{
    int64_t now = clock_mono_ms();
    rt->up_since = up ? (now ? now : 1) : 0;
}

void routes_suspect(struct routes *rt, enum edge_ns ns, const char *name)
{
    char key[ROUTE_KEY_MAX];
    int klen;
    struct route *r = route_find(rt, ns, name, key, &klen);
    if (r != NULL)
        r->suspect = true;
}

void routes_playlist_seen(struct routes *rt, const char *name, bool ended)
{
    char key[ROUTE_KEY_MAX];
    int klen;
    struct route *r = route_find(rt, NS_LIVE, name, key, &klen);
    if (r != NULL)
        r->live_at = ended ? 0 : clock_mono_ms();
}

void routes_sweep(struct routes *rt)
{
    int64_t now = clock_mono_ms();
    struct route *r = rt->tail, *prev;
    for (; r != NULL; r = prev) {
        prev = r->prev;
        if (!evictable(r))
            continue;
        if ((!r->url[0] && now >= r->absent_until) ||
            (r->url[0] && now - r->confirmed >= rt->o.stale_ms))
            route_free(rt, r);
    }
}

size_t routes_count(const struct routes *rt)
{
    return rt->index.count;
}
