/* A lease kept by its holder: see leasekeep.h. */
#include "sluice/leasekeep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/redis.h"

#define RELEASE_BOUND_MS 2000
#define RETRY_MS 500

enum lk_state { S_WAITING, S_HELD, S_ENDED, S_RELEASING, S_RELEASED };

/* One command in flight. It outlives the lease if the lease is freed first:
 * the reply then finds op->l NULL and only frees the op. */
struct lk_op {
    struct leasekeep *l;
};

struct leasekeep {
    struct redis *r;
    char *key, *holder;
    int64_t ttl_ms, wait_ms, retry_ms;
    bool takeover;
    leasekeep_cb cb;
    void *arg;
    enum lk_state state;
    bool need_acquire;           /* not known to be ours: acquire, not renew */
    struct lk_op *op;            /* the command in flight, or NULL */
    struct event *timer;         /* renew, retry, and the release bound */
    struct event *deadline;      /* wait_ms */
    struct event *notify;        /* LK_RELEASED from the loop */
};

static void set_timer(struct event *ev, int64_t ms)
{
    struct timeval tv = clock_tv_ms(ms);
    evtimer_add(ev, &tv);
}

/* Ends in <st>, reporting <ev>. The callback may free <l>: nothing after it. */
static void finish(struct leasekeep *l, enum lk_state st, enum leasekeep_event ev,
                   const char *other)
{
    l->state = st;
    evtimer_del(l->timer);
    evtimer_del(l->deadline);
    l->cb(ev, other, l->arg);
}

static void send_take(struct leasekeep *l);

/* A reply to acquire, renew or take over. */
static void on_taken(enum lease_result res, const char *other, void *arg)
{
    struct lk_op *op = arg;
    struct leasekeep *l = op->l;
    free(op);
    if (l == NULL)
        return;                          /* freed meanwhile */
    l->op = NULL;
    if (l->state != S_WAITING && l->state != S_HELD)
        return;
    if (res == LEASE_HELD) {
        l->need_acquire = false;
        set_timer(l->timer, l->ttl_ms / 3);
        if (l->state == S_WAITING) {
            l->state = S_HELD;
            evtimer_del(l->deadline);
            l->cb(LK_HELD, other, l->arg);
        }
    } else if (res == LEASE_OTHER && other != NULL) {
        finish(l, S_ENDED, l->state == S_WAITING ? LK_REFUSED : LK_LOST, other);
    } else {
        /* expired meanwhile (free to take again) or Redis trouble: soon again */
        l->need_acquire = true;
        set_timer(l->timer, l->retry_ms);
    }
}

/* Takes the lease (first time, or again after an outage), or renews it. */
static void send_take(struct leasekeep *l)
{
    if (l->op != NULL || !redis_is_up(l->r)) {
        if (l->op == NULL)
            set_timer(l->timer, l->retry_ms);
        return;
    }
    struct lk_op *op = malloc(sizeof(*op));
    if (op == NULL) {
        set_timer(l->timer, l->retry_ms);
        return;
    }
    op->l = l;
    int rc;
    if (l->state == S_WAITING && l->takeover)
        rc = redis_lease_takeover(l->r, l->key, l->holder, l->ttl_ms, on_taken, op);
    else if (l->need_acquire)
        rc = redis_lease_acquire(l->r, l->key, l->holder, l->ttl_ms, on_taken, op);
    else
        rc = redis_lease_renew(l->r, l->key, l->holder, l->ttl_ms, on_taken, op);
    if (rc == -1) {
        free(op);
        set_timer(l->timer, l->retry_ms);
        return;
    }
    l->op = op;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct leasekeep *l = arg;
    if (l->state == S_WAITING || l->state == S_HELD) {
        send_take(l);
    } else if (l->state == S_RELEASING) {
        log_warn("redis: no answer to the release of %s; it expires by itself", l->key);
        finish(l, S_RELEASED, LK_RELEASED, NULL);
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct leasekeep *l = arg;
    if (l->state == S_WAITING)
        finish(l, S_ENDED, LK_REFUSED, NULL);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct leasekeep *l = arg;
    finish(l, S_RELEASED, LK_RELEASED, NULL);
}

void leasekeep_redis_state(struct leasekeep *l, bool up)
{
    if (!up) {
        if (l->state == S_HELD)
            log_warn("redis: down while holding %s: going on, it will be taken again", l->key);
        l->need_acquire = true;
        return;
    }
    if (l->state == S_WAITING || l->state == S_HELD) {
        evtimer_del(l->timer);
        send_take(l);
    }
}

struct leasekeep *leasekeep_start(struct event_base *base, struct redis *r,
                                  const struct leasekeep_options *o, leasekeep_cb cb,
                                  void *arg)
{
    struct leasekeep *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->r = r;
    l->cb = cb;
    l->arg = arg;
    l->ttl_ms = o->ttl_ms;
    l->wait_ms = o->wait_ms;
    l->retry_ms = o->retry_ms > 0 ? o->retry_ms : RETRY_MS;
    l->takeover = o->takeover;
    l->need_acquire = true;
    l->key = strdup(o->key);
    l->holder = strdup(o->holder);
    l->timer = evtimer_new(base, on_timer, l);
    l->deadline = evtimer_new(base, on_deadline, l);
    l->notify = evtimer_new(base, on_notify, l);
    if (!l->key || !l->holder || !l->timer || !l->deadline || !l->notify) {
        leasekeep_free(l);
        return NULL;
    }
    if (l->wait_ms > 0)
        set_timer(l->deadline, l->wait_ms);
    send_take(l);
    return l;
}

bool leasekeep_held(const struct leasekeep *l)
{
    return l->state == S_HELD;
}

static void on_released(enum lease_result res, const char *other, void *arg)
{
    (void)res;
    (void)other;
    struct lk_op *op = arg;
    struct leasekeep *l = op->l;
    free(op);
    if (l == NULL)
        return;
    l->op = NULL;
    if (l->state == S_RELEASING)
        finish(l, S_RELEASED, LK_RELEASED, NULL);
}

void leasekeep_release(struct leasekeep *l)
{
    if (l->state == S_RELEASING || l->state == S_RELEASED)
        return;
    /* it may be ours if taken, or if a take is on its way: Redis runs
     * commands in order, so a release sent now comes after that take */
    bool maybe_ours = l->state == S_HELD || (l->state == S_WAITING && l->op != NULL);
    if (l->op != NULL) {
        l->op->l = NULL;
        l->op = NULL;
    }
    l->state = S_RELEASING;
    evtimer_del(l->timer);
    evtimer_del(l->deadline);
    struct lk_op *op = maybe_ours ? malloc(sizeof(*op)) : NULL;
    if (op != NULL) {
        op->l = l;
        if (redis_lease_release(l->r, l->key, l->holder, on_released, op) == 0) {
            l->op = op;
            set_timer(l->timer, RELEASE_BOUND_MS);
            return;
        }
        free(op);
    }
    event_active(l->notify, EV_TIMEOUT, 0);
}

void leasekeep_free(struct leasekeep *l)
{
    if (l == NULL)
        return;
    if (l->op != NULL)
        l->op->l = NULL;
    if (l->timer)
        event_free(l->timer);
    if (l->deadline)
        event_free(l->deadline);
    if (l->notify)
        event_free(l->notify);
    free(l->key);
    free(l->holder);
    free(l);
}
