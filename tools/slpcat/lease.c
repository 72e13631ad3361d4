/* The publish lease: see lease.h. */
#include "lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "slpcat.h"
#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/redis.h"
#include "sluice/slp-t.h"

#define RELEASE_BOUND_MS 2000
#define RETRY_MS 500

enum lease_state { L_WAITING, L_HELD, L_ENDED, L_RELEASING, L_RELEASED };

struct lease {
    struct slpcat *s;
    struct redis *r;
    char key[128];
    char holder[SLP_ID_MAX + 1];
    lease_cb cb;
    void *arg;
    enum lease_state state;
    bool busy;                   /* a lease command is in flight */
    bool need_acquire;           /* not known to be ours: acquire, not renew */
    struct event *deadline;      /* taking, then releasing, must end by then */
    struct event *renew;         /* every ttl/3 while held; retries while waiting */
};

static void set_timer(struct event *ev, int64_t ms)
{
    struct timeval tv = clock_tv_ms(ms);
    evtimer_add(ev, &tv);
}

static void finish(struct lease *l, enum lease_state st, enum lease_event ev, const char *other)
{
    l->state = st;
    evtimer_del(l->renew);
    evtimer_del(l->deadline);
    l->cb(ev, other, l->arg);
}

static void take(struct lease *l, bool takeover);

static void on_taken(enum lease_result res, const char *other, void *arg)
{
    struct lease *l = arg;
    l->busy = false;
    if (l->state != L_WAITING && l->state != L_HELD)
        return;                          /* ending: a late answer */
    if (res == LEASE_HELD)
        l->need_acquire = false;
    if (res == LEASE_OTHER && other == NULL)
        l->need_acquire = true;          /* expired meanwhile: free to take again */
    if (l->state == L_WAITING && res == LEASE_HELD) {
        l->state = L_HELD;
        evtimer_del(l->deadline);
        if (other != NULL)
            log_warn("took the publish lease over from %s", other);
        log_info("holding %s as %s", l->key, l->holder);
        set_timer(l->renew, l->s->cfg.lease_ttl_ms / 3);
        l->cb(LEASE_EV_HELD, NULL, l->arg);
    } else if (res == LEASE_OTHER && other != NULL) {
        finish(l, L_ENDED, l->state == L_WAITING ? LEASE_EV_REFUSED : LEASE_EV_LOST, other);
    } else if (res == LEASE_OTHER || res == LEASE_ERROR) {
        set_timer(l->renew, RETRY_MS);   /* free after all, or Redis trouble: again soon */
    } else if (l->state == L_HELD) {
        set_timer(l->renew, l->s->cfg.lease_ttl_ms / 3);
    }
}

/* Takes the lease (first time, or again after a Redis outage), or renews it. */
static void take(struct lease *l, bool takeover)
{
    if (l->busy || !redis_is_up(l->r))
        return;
    int64_t ttl = l->s->cfg.lease_ttl_ms;
    int rc;
    if (takeover)
        rc = redis_lease_takeover(l->r, l->key, l->holder, ttl, on_taken, l);
    else if (l->need_acquire)
        rc = redis_lease_acquire(l->r, l->key, l->holder, ttl, on_taken, l);
    else
        rc = redis_lease_renew(l->r, l->key, l->holder, ttl, on_taken, l);
    l->busy = rc == 0;
}

static void on_renew(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lease *l = arg;
    if (l->state == L_WAITING || l->state == L_HELD) {
        take(l, l->state == L_WAITING && l->s->cfg.takeover);
        if (!l->busy)
            set_timer(l->renew, RETRY_MS);
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lease *l = arg;
    if (l->state == L_WAITING) {
        finish(l, L_ENDED, LEASE_EV_REFUSED, NULL);
    } else if (l->state == L_RELEASING) {
        log_warn("no answer from Redis to the release of %s; it expires by itself", l->key);
        finish(l, L_RELEASED, LEASE_EV_RELEASED, NULL);
    }
}

/* Redis came up (first connection included) or went down. */
static void on_redis_state(bool up, void *arg)
{
    struct lease *l = arg;
    if (!up) {
        if (l->state == L_HELD)
            log_warn("Redis is down: publishing on, the lease will be taken again");
        l->need_acquire = true;
        return;
    }
    if (l->state == L_WAITING || l->state == L_HELD)
        take(l, l->state == L_WAITING && l->s->cfg.takeover);
}

struct lease *lease_start(struct slpcat *s, const char *stream, const char *holder,
                          lease_cb cb, void *arg)
{
    struct lease *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->s = s;
    l->cb = cb;
    l->arg = arg;
    l->need_acquire = true;
    snprintf(l->key, sizeof(l->key), "sluice:lease:publish:%s", stream);
    snprintf(l->holder, sizeof(l->holder), "%s", holder);
    struct redis_options o = { .url = s->cfg.redis_url,
                               .connect_timeout_ms = (int)s->cfg.connect_timeout_ms };
    l->r = redis_new(s->base, s->dns, &o);
    l->deadline = evtimer_new(s->base, on_deadline, l);
    l->renew = evtimer_new(s->base, on_renew, l);
    if (l->r == NULL || l->deadline == NULL || l->renew == NULL) {
        slpcat_say("cannot use Redis at %s", s->cfg.redis_url);
        lease_free(l);
        return NULL;
    }
    redis_set_state_cb(l->r, on_redis_state, l);
    set_timer(l->deadline, s->cfg.connect_timeout_ms);
    return l;
}

static void on_released(enum lease_result res, const char *other, void *arg)
{
    (void)res;
    (void)other;
    struct lease *l = arg;
    if (l->state == L_RELEASING)
        finish(l, L_RELEASED, LEASE_EV_RELEASED, NULL);
}

void lease_release(struct lease *l)
{
    if (l->state == L_RELEASING || l->state == L_RELEASED)
        return;
    bool held = l->state == L_HELD;
    l->state = L_RELEASING;
    evtimer_del(l->renew);
    if (held && redis_lease_release(l->r, l->key, l->holder, on_released, l) == 0) {
        set_timer(l->deadline, RELEASE_BOUND_MS);
        return;
    }
    finish(l, L_RELEASED, LEASE_EV_RELEASED, NULL);
}

void lease_free(struct lease *l)
{
    if (l == NULL)
        return;
    if (l->r != NULL)
        redis_free(l->r);
    if (l->deadline != NULL)
        event_free(l->deadline);
    if (l->renew != NULL)
        event_free(l->renew);
    free(l);
}
