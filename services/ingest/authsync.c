/* Keeping the authorization table: see authsync.h. */
#include "authsync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "authtable.h"
#include "gate.h"
#include "ingest.h"
#include "relays.h"
#include "viewer.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/httpc.h"
#include "sluice/json.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/redis.h"

#define EVENTS_CHANNEL "sluice:events"
#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 5000

/* One load in flight; outlives the authsync if it is freed first. */
struct load {
    struct authsync *a;
};

struct authsync {
    struct ingest *ing;
    struct event *timer;         /* the next load: periodic, or a retry */
    struct load *load;           /* in flight, or NULL */
    bool again;                  /* another load was asked for meanwhile */
    bool loaded;                 /* a table came at least once */
    int64_t retry_ms;
    char status[256];            /* "ok" or why not */
};

static void schedule(struct authsync *a, int64_t ms)
{
    struct timeval tv = clock_tv_ms(ms);
    evtimer_add(a->timer, &tv);
}

static void load_failed(struct authsync *a, const char *why)
{
    ingest_count(a->ing, IM_AUTH_LOADS, "error", 1);
    if (!a->loaded) {
        snprintf(a->status, sizeof(a->status),
                 "no authorization table yet, refusing every publisher: %s", why);
        log_warn("auth: %s; again in %lld ms", a->status, (long long)a->retry_ms);
    } else {
        log_warn("auth: reloading the authorization table failed (%s): keeping the one in "
                 "use; again in %lld ms", why, (long long)a->retry_ms);
    }
    schedule(a, a->retry_ms);
    a->retry_ms = a->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : a->retry_ms * 2;
}

/* <since_us>: when the load's answer came (clock_mono_us). */
static void install(struct authsync *a, struct authtable *loaded, size_t skipped,
                    int64_t since_us)
{
    struct ingest *ing = a->ing;
    struct authtable *t = authtable_merge(loaded, gate_table(ing->gate));
    if (t == NULL) {
        load_failed(a, "out of memory");
        return;
    }
    if (!a->loaded || skipped > 0)
        log_info("auth: table loaded: %zu streams, version %lld%s", authtable_size(t),
                 (long long)authtable_version(t), skipped ? " (entries skipped: see above)" : "");
    if (skipped > 0)
        log_warn("auth: %zu entries of the authtable break the contract and were skipped",
                 skipped);
    gate_set_table(ing->gate, t);
    ingest_recheck(ing, since_us);   /* events missed meanwhile may revoke some */
    a->loaded = true;
    a->retry_ms = RETRY_MIN_MS;
    snprintf(a->status, sizeof(a->status), "ok");
    ingest_count(ing, IM_AUTH_LOADS, "ok", 1);
    schedule(a, ing->cfg->authtable_refresh_ms);
}

static void on_loaded(const struct httpc_response *r, void *arg)
{
    int64_t since_us = clock_mono_us();   /* a revocation's clock starts here */
    struct load *l = arg;
    struct authsync *a = l->a;
    free(l);
    if (a == NULL)
        return;                  /* freed meanwhile */
    a->load = NULL;
    char why[200], err[128];
    json_t *doc = NULL;
    if (r->status != 200) {
        if (r->error)
            snprintf(why, sizeof(why), "api: %s", r->error);
        else
            snprintf(why, sizeof(why), "api answered %d", r->status);
        load_failed(a, why);
    } else if ((doc = json_parse_evbuffer(r->body, err, sizeof(err))) == NULL) {
        snprintf(why, sizeof(why), "api sent bad JSON: %s", err);
        load_failed(a, why);
    } else {
        size_t skipped;
        struct authtable *t = authtable_from_json(doc, &skipped, err, sizeof(err));
        if (t == NULL)
            load_failed(a, err);
        else
            install(a, t, skipped, since_us);
    }
    json_decref(doc);
    if (a->again) {
        a->again = false;
        authsync_reload(a);
    }
}

void authsync_reload(struct authsync *a)
{
    if (a->load != NULL) {
        a->again = true;
        return;
    }
    struct load *l = calloc(1, sizeof(*l));
    const char *headers[] = { "Authorization", a->ing->auth_header, NULL };
    evtimer_del(a->timer);
    if (l == NULL || httpc_request(a->ing->api, "GET", "/internal/v1/authtable", headers, NULL,
                                   0, on_loaded, l) == -1) {
        free(l);
        load_failed(a, "cannot send the request");
        return;
    }
    l->a = a;
    a->load = l;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    authsync_reload(arg);
}

/* ---- events ------------------------------------------------------------- */

static const char *kind_name(enum auth_event_kind k)
{
    static const char *const names[] = { "stream.created", "stream.updated", "key.rotated",
                                         "stream.deleted" };
    return names[k];
}

/* stream.start: a relay has the stream now; viewers waiting for it, or
 * watching it on another relay, go there. */
static void started(struct ingest *ing, const json_t *doc)
{
    const char *type = NULL, *stream = NULL;
    struct relay_choice where;
    if (json_get_str(doc, "type", &type) == 0 && strcmp(type, "stream.start") == 0 &&
        json_get_str(doc, "stream", &stream) == 0 && stream_name_valid(stream) &&
        stream_location_parse(doc, &where) == 0)
        viewer_stream_started(ing, stream, where.addr, where.id);
}

static void on_message(const char *channel, const char *msg, size_t len, void *arg)
{
    (void)channel;
    int64_t since_us = clock_mono_us();   /* a revocation's clock starts here */
    struct authsync *a = arg;
    struct ingest *ing = a->ing;
    char err[128];
    json_t *doc = json_parse(msg, len, err, sizeof(err));
    struct authtable *t = NULL;
    struct auth_event ev;
    enum auth_event_result r = doc ? authtable_apply_event(gate_table(ing->gate), doc, &t, &ev)
                                   : AE_BAD;
    if (r == AE_IGNORED)
        started(ing, doc);
    json_decref(doc);
    switch (r) {
    case AE_APPLIED: {
        gate_set_table(ing->gate, t);
        ingest_count(ing, IM_EVENTS, "applied", 1);
        log_info("auth: %s %s (version %lld)", kind_name(ev.kind), ev.stream,
                 (long long)ev.version);
        /* a new key, a deletion, disabling, a new passphrase: the stream's
         * connections that the new entry no longer admits go */
        ingest_recheck(ing, since_us);
        return;
    }
    case AE_STALE:
        ingest_count(ing, IM_EVENTS, "stale", 1);
        log_debug("auth: %s %s (version %lld): not newer than the table, ignored",
                  kind_name(ev.kind), ev.stream, (long long)ev.version);
        return;
    case AE_IGNORED:
        return;
    case AE_BAD:
    case AE_NOMEM: {
        char text[200];
        ingest_count(ing, IM_EVENTS, "bad", 1);
        log_warn("auth: an event on %s breaks the contract: %s", EVENTS_CHANNEL,
                 log_escape(text, sizeof(text), msg, len));
        return;
    }
    }
}

static void on_subscribed(void *arg)
{
    /* events may have been lost while we were away: load everything */
    authsync_reload(arg);
}

struct authsync *authsync_start(struct ingest *ing)
{
    struct authsync *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->ing = ing;
    a->retry_ms = RETRY_MIN_MS;
    snprintf(a->status, sizeof(a->status), "no authorization table yet: loading");
    a->timer = evtimer_new(ing->d->base, on_timer, a);
    if (a->timer == NULL ||
        redis_subscribe(ing->redis, EVENTS_CHANNEL, on_message, on_subscribed, a) == -1) {
        authsync_free(a);
        return NULL;
    }
    authsync_reload(a);
    return a;
}

void authsync_free(struct authsync *a)
{
    if (a == NULL)
        return;
    if (a->load != NULL)
        a->load->a = NULL;
    if (a->timer)
        event_free(a->timer);
    free(a);
}

bool authsync_ready(const struct authsync *a, const char **why)
{
    if (why != NULL)
        *why = a->status;
    return a->loaded;
}
