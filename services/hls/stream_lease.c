/* One stream's lease, and its Redis commands outside the media path (see
 * stream_int.h): taking the lease (attempts, PTTL), claiming the stream (its
 * state and record read, the epoch written), losing the lease, releasing or
 * handing it over, and looking for the stream's relay during the grace. */
#include "stream_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hls.h"
#include "records.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/leasekeep.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/redis.h"

#define ATTEMPT_SLACK_MS 50    /* after the holder's lease should expire */

/* Writes the state only while we hold the lease. KEYS: lease, state. ARGV:
 * holder, state JSON, TTL ms. Returns 1 (written), 0 (no lease: Redis lost
 * it, we take it again) or the other holder (not written). */
static const char WRITE_SCRIPT[] =
    "local h = redis.call('GET', KEYS[1]) "
    "if h == ARGV[1] then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) return 1 end "
    "if h then return h end return 0";

int stream_write_state(struct stream *s, const struct pstate *st, redis_reply_cb cb)
{
    char *json = pstate_format(st, clock_wall_us());
    struct sop *op = json ? stream_sop_new(s, &s->op_write) : NULL;
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%d", STATE_TTL_MS);
    if (op != NULL &&
        redis_command(s->h->redis, cb, op, "EVAL %s 2 %s %s %s %s %s", WRITE_SCRIPT,
                      s->key_lease, s->key_state, s->h->holder, json, ttl) == 0) {
        free(json);
        return 0;
    }
    free(json);
    free(op);
    s->op_write = NULL;
    return -1;
}

/* ---- leases --------------------------------------------------------------- */

static void on_lease(enum leasekeep_event ev, const char *other, void *arg);

/* Lets our lease go and says so (hls.released) in one step, so that whoever
 * hears it finds the lease free. KEYS: lease. ARGV: holder, event. */
static const char HANDOVER_SCRIPT[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) "
    "redis.call('PUBLISH', 'sluice:events', ARGV[2]) return 1 end return 0";

/* The lease is let go (or was not ours any more): done with it. */
static void released(struct stream *s)
{
    leasekeep_free(s->lease);
    s->lease = NULL;
    if (s->releasing) {
        s->releasing = false;
        s->h->releasing--;
    }
    if (s->role != SR_CANDIDATE) {      /* a stop, or a claim given up */
        stream_stop_packaging(s);
        stream_set_role(s, SR_CANDIDATE);
    }
    if (s->live && !s->h->stopping)
        stream_set_timer(s, RETRY_MS);
    stream_maybe_free(s);
}

static void on_handed_over(const struct redis_reply *reply, const char *err, void *arg)
{
    struct stream *s = stream_sop_done(arg, stream_slot_write);
    if (s == NULL || s->lease == NULL)
        return;
    if (err != NULL) {
        leasekeep_release(s->lease);   /* LK_RELEASED follows */
        return;
    }
    (void)reply;
    released(s);
}

/* An origin that stops hands its streams over: the lease goes, and an
 * hls.released event says so, so that another origin takes the stream now
 * rather than when the TTL runs out. */
static void hand_over(struct stream *s)
{
    char at[32], msg[512];
    clock_rfc3339(at, sizeof(at), clock_wall_us());
    snprintf(msg, sizeof(msg),
             "{\"type\":\"hls.released\",\"stream\":\"%s\",\"at\":\"%s\",\"owner\":\"%s\"}",
             s->name, at, s->h->holder);
    struct sop *op = stream_sop_new(s, &s->op_write);
    if (op != NULL && redis_command(s->h->redis, on_handed_over, op, "EVAL %s 1 %s %s %s",
                                    HANDOVER_SCRIPT, s->key_lease, s->h->holder, msg) == 0)
        return;
    free(op);
    s->op_write = NULL;
    leasekeep_release(s->lease);       /* LK_RELEASED follows */
}

void stream_release_lease(struct stream *s)
{
    if (s->lease == NULL)
        return;
    if (!s->releasing) {
        s->releasing = true;
        s->h->releasing++;
    }
    if (s->stopping && leasekeep_held(s->lease) && s->op_write == NULL)
        hand_over(s);
    else
        leasekeep_release(s->lease);   /* LK_RELEASED follows */
}

static void on_pttl(const struct redis_reply *reply, const char *err, void *arg)
{
    struct stream *s = stream_sop_done(arg, stream_slot_pttl);
    if (s == NULL || s->role != SR_CANDIDATE)
        return;
    long long ms = reply && redis_reply_type(reply) == REDIS_R_INTEGER ? redis_reply_int(reply)
                                                                      : -3;
    if (err != NULL || ms == -3)
        stream_set_timer(s, RETRY_MS);
    else if (ms < 0)                    /* gone meanwhile (or no TTL: never ours) */
        stream_set_timer(s, ms == -2 ? ATTEMPT_SLACK_MS : s->h->cfg->lease_ttl_ms);
    else
        stream_set_timer(s, ms + ATTEMPT_SLACK_MS < s->h->cfg->lease_ttl_ms
                         ? ms + ATTEMPT_SLACK_MS : s->h->cfg->lease_ttl_ms);
}

/* Refused: try again when the holder's lease would run out unrenewed. */
static void refused(struct stream *s, const char *other)
{
    log_debug("stream %s: packaged by %s", s->name, other ? other : "another origin");
    struct sop *op = stream_sop_new(s, &s->op_pttl);
    if (op == NULL ||
        redis_command(s->h->redis, on_pttl, op, "PTTL %s", s->key_lease) == -1) {
        free(op);
        s->op_pttl = NULL;
        stream_set_timer(s, RETRY_MS);
    }
}

static void attempt(struct stream *s)
{
    struct hls *h = s->h;
    if (s->role != SR_CANDIDATE || s->lease != NULL || !s->live || h->stopping ||
        s->op_pttl != NULL)
        return;
    int64_t wait;
    if ((int64_t)h->nowned >= h->cfg->max_streams) {
        stream_set_timer(s, 2 * RETRY_MS);
        return;
    }
    if (!hls_may_take(h, clock_mono_ms(), &wait)) {
        stream_set_timer(s, wait);
        return;
    }
    struct leasekeep_options o = { .key = s->key_lease, .holder = h->holder,
                                   .ttl_ms = h->cfg->lease_ttl_ms };
    s->lease = leasekeep_start(h->d->base, h->redis, &o, on_lease, s);
    if (s->lease == NULL)
        stream_set_timer(s, RETRY_MS);
}

/* ---- claiming ------------------------------------------------------------- */

static void on_claimed(const struct redis_reply *reply, const char *err, void *arg)
{
    struct stream *s = stream_sop_done(arg, stream_slot_write);
    if (s == NULL || s->role != SR_CLAIMING)
        return;
    if (err != NULL || redis_reply_type(reply) == REDIS_R_INTEGER) {
        if (err == NULL && redis_reply_int(reply) == 1) {
            stream_start_packaging(s);
            return;
        }
        log_warn("stream %s: epoch not recorded (%s); trying again", s->name,
                 err ? err : "the lease is not in Redis");
        stream_set_timer(s, RETRY_MS);
        return;
    }
    size_t len;
    const char *o = redis_reply_str(reply, &len);
    char other[PSTATE_OWNER_MAX + 1];
    log_escape(other, sizeof(other), o ? o : "", o ? len : 0);
    stream_lost(s, other);
}

/* Records our epoch (the last one plus one) before packaging anything. */
static void claim(struct stream *s)
{
    struct pstate st;
    if (s->prev_valid)
        st = s->prev;
    else
        memset(&st, 0, sizeof(st)), st.end_pts = -1;
    st.epoch = s->prev_valid ? s->prev.epoch + 1 : 1;
    snprintf(st.owner, sizeof(st.owner), "%s", s->h->holder);
    if (stream_write_state(s, &st, on_claimed) == -1)
        stream_set_timer(s, RETRY_MS);
}

static void give_up(struct stream *s, const char *why)
{
    log_info("stream %s: not packaging: %s", s->name, why);
    stream_set_role(s, SR_CANDIDATE);
    s->live = false;
    stream_release_lease(s);
}

static void on_loaded(const struct redis_reply *reply, const char *err, void *arg)
{
    struct stream *s = stream_sop_done(arg, stream_slot_load);
    if (s == NULL || s->role != SR_CLAIMING)
        return;
    if (err != NULL || redis_reply_type(reply) != REDIS_R_ARRAY || redis_reply_len(reply) != 2) {
        log_warn("stream %s: cannot read its state (%s); trying again", s->name,
                 err ? err : "unexpected reply");
        stream_set_timer(s, RETRY_MS);
        return;
    }
    const struct redis_reply *state = redis_reply_at(reply, 0), *rec = redis_reply_at(reply, 1);
    char why[200];
    size_t len;
    const char *v;
    s->prev_valid = false;
    if (redis_reply_type(state) == REDIS_R_STRING && (v = redis_reply_str(state, &len)) != NULL) {
        if (pstate_parse(v, len, &s->prev, why, sizeof(why)) == 0)
            s->prev_valid = true;
        else
            log_error("stream %s: %s is unusable (%s): starting a new playlist", s->name,
                      s->key_state, why);
    }
    struct stream_record r;
    if (redis_reply_type(rec) != REDIS_R_STRING || (v = redis_reply_str(rec, &len)) == NULL) {
        give_up(s, "it is not live any more");
        return;
    }
    if (records_stream_parse(v, len, &r, why, sizeof(why)) == -1 || strcmp(r.name, s->name)) {
        log_error("stream %s: %s is unusable (%s)", s->name, s->key_stream, why);
        give_up(s, "no usable stream record");
        return;
    }
    snprintf(s->relay, sizeof(s->relay), "%s", r.relay);
    claim(s);
}

static void load(struct stream *s)
{
    struct sop *op = stream_sop_new(s, &s->op_load);
    if (op != NULL && redis_command(s->h->redis, on_loaded, op, "MGET %s %s", s->key_state,
                                    s->key_stream) == 0)
        return;
    free(op);
    s->op_load = NULL;
    stream_set_timer(s, RETRY_MS);
}

/* ---- loss, and what leasekeep and the timer say --------------------------- */

void stream_lost(struct stream *s, const char *other)
{
    log_warn("stream %s: lease lost to %s: stopping; serving what was published for %lld ms",
             s->name, other ? other : "?", (long long)s->h->cfg->linger_ms);
    metric_add(s->h->stats.leases_lost, 1);
    stream_stop_packaging(s);
    stream_set_role(s, SR_CANDIDATE);
    if (s->lease != NULL) {
        leasekeep_free(s->lease);   /* not ours: nothing to release */
        s->lease = NULL;
    }
    if (s->releasing) {
        s->releasing = false;
        s->h->releasing--;
    }
    s->linger_until_ms = s->playlist ? clock_mono_ms() + s->h->cfg->linger_ms : 0;
    if (!s->h->stopping)
        refused(s, other);
}

static void on_lease(enum leasekeep_event ev, const char *other, void *arg)
{
    struct stream *s = arg;
    switch (ev) {
    case LK_HELD:
        if (s->h->stopping || !s->live) {
            stream_release_lease(s);
            return;
        }
        log_info("stream %s: lease taken", s->name);
        stream_stop_packaging(s);
        stream_set_role(s, SR_CLAIMING);
        load(s);
        return;
    case LK_REFUSED:
        leasekeep_free(s->lease);
        s->lease = NULL;
        if (s->live && !s->h->stopping)
            refused(s, other);
        return;
    case LK_LOST:
        stream_lost(s, other);
        return;
    case LK_RELEASED:
        released(s);
        return;
    }
}

void stream_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct stream *s = arg;
    if (s->role == SR_CANDIDATE)
        attempt(s);
    else if (s->role == SR_CLAIMING && s->op_load == NULL && s->op_write == NULL)
        load(s);
}

/* ---- the grace: where is the stream now? ---------------------------------- */

static void on_lookup(const struct redis_reply *reply, const char *err, void *arg)
{
    struct stream *s = stream_sop_done(arg, stream_slot_lookup);
    if (s == NULL || s->role != SR_GRACE || s->link != NULL)
        return;
    size_t len;
    const char *v = reply && redis_reply_type(reply) == REDIS_R_STRING
                        ? redis_reply_str(reply, &len) : NULL;
    struct stream_record rec;
    char why[160];
    if (v != NULL && records_stream_parse(v, len, &rec, why, sizeof(why)) == 0 &&
        strcmp(rec.name, s->name) == 0) {
        snprintf(s->relay, sizeof(s->relay), "%s", rec.relay);
        stream_open_link(s);
    } else if (err != NULL) {
        stream_open_link(s);            /* Redis is in trouble: wait at the relay we know */
    } else {
        s->next_link_ms = clock_mono_ms() + RETRY_MS;
    }
}

/* GRACE: where is the stream now? The stream record says; without Redis, we
 * wait at the relay we know (it holds subscribers until the stream is back). */
void stream_look_for_source(struct stream *s)
{
    s->next_link_ms = clock_mono_ms() + RETRY_MS;
    struct sop *op = stream_sop_new(s, &s->op_lookup);
    if (op != NULL && redis_command(s->h->redis, on_lookup, op, "GET %s", s->key_stream) == 0)
        return;
    free(op);
    s->op_lookup = NULL;
    stream_open_link(s);
}
