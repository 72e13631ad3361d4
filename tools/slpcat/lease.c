/* The publish lease: see lease.h. The keeping itself (take, renew, Redis
 * outages, release) is libcommon's leasekeep; this file gives it slpcat's
 * Redis connection and words. */
#include "lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slpcat.h"
#include "sluice/leasekeep.h"
#include "sluice/log.h"
#include "sluice/redis.h"
#include "sluice/slp-t.h"

struct lease {
    struct redis *r;
    struct leasekeep *keep;
    char key[128];
    char holder[SLP_ID_MAX + 1];
    lease_cb cb;
    void *arg;
};

static void on_keep(enum leasekeep_event ev, const char *other, void *arg)
{
    struct lease *l = arg;
    switch (ev) {
    case LK_HELD:
        if (other != NULL)
            log_warn("took the publish lease over from %s", other);
        log_info("holding %s as %s", l->key, l->holder);
        l->cb(LEASE_EV_HELD, NULL, l->arg);
        return;
    case LK_REFUSED:
        l->cb(LEASE_EV_REFUSED, other, l->arg);
        return;
    case LK_LOST:
        l->cb(LEASE_EV_LOST, other, l->arg);
        return;
    case LK_RELEASED:
        l->cb(LEASE_EV_RELEASED, NULL, l->arg);
        return;
    }
}

static void on_redis_state(bool up, void *arg)
{
    struct lease *l = arg;
    if (l->keep != NULL)
        leasekeep_redis_state(l->keep, up);
}

struct lease *lease_start(struct slpcat *s, const char *stream, const char *holder,
                          lease_cb cb, void *arg)
{
    struct lease *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->cb = cb;
    l->arg = arg;
    snprintf(l->key, sizeof(l->key), "sluice:lease:publish:%s", stream);
    snprintf(l->holder, sizeof(l->holder), "%s", holder);
    struct redis_options o = { .url = s->cfg.redis_url,
                               .connect_timeout_ms = (int)s->cfg.connect_timeout_ms };
    struct leasekeep_options ko = { .key = l->key, .holder = l->holder,
                                    .ttl_ms = s->cfg.lease_ttl_ms, .takeover = s->cfg.takeover,
                                    .wait_ms = s->cfg.connect_timeout_ms };
    if ((l->r = redis_new(s->base, s->dns, &o)) == NULL ||
        (l->keep = leasekeep_start(s->base, l->r, &ko, on_keep, l)) == NULL) {
        slpcat_say("cannot use Redis at %s", s->cfg.redis_url);
        lease_free(l);
        return NULL;
    }
    redis_set_state_cb(l->r, on_redis_state, l);
    return l;
}

void lease_release(struct lease *l)
{
    leasekeep_release(l->keep);
}

void lease_free(struct lease *l)
{
    if (l == NULL)
        return;
    leasekeep_free(l->keep);       /* first: a reply cancelled by redis_free finds nobody */
    if (l->r != NULL)
        redis_free(l->r);
    free(l);
}
