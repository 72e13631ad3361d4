/* The relay's Redis registry: see registry.h and docs/redis.md. */
#include "registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "chunk.h"
#include "relay.h"
#include "stream.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/redis.h"
#include "sluice/slp.h"

#define EVENTS "sluice:events"
#define OP_MAX_ARGS 8

enum script { SCRIPT_BEAT, SCRIPT_END, SCRIPT_COUNT };

/* Each is loaded with SCRIPT LOAD whenever Redis (re)connects and called
 * with EVALSHA; EVAL (which loads it) until then, and after a NOSCRIPT. */
static const char *const script_text[SCRIPT_COUNT] = {
    /* A live stream's heartbeat. KEYS: sluice:stream:<name>,
     * sluice:lease:publish:<name>. ARGV: record, publisher id, TTL (ms),
     * stream.start event or "", channel. {1}: written; {0, holder}: the
     * lease is someone else's, nothing written. */
    [SCRIPT_BEAT] =
        "local holder = redis.call('GET', KEYS[2])\n"
        "if holder and holder ~= ARGV[2] then return {0, holder} end\n"
        "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])\n"
        "if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[4]) end\n"
        "return {1}\n",
    /* A stream's end. KEYS: sluice:stream:<name>. ARGV: relay id,
     * stream.stop event, channel. 1: the record was ours (or gone) and
     * stream.stop went out; 0: another relay has the stream now. */
    [SCRIPT_END] =
        "local v = redis.call('GET', KEYS[1])\n"
        "if v then\n"
        "  local ok, rec = pcall(cjson.decode, v)\n"
        "  if not ok or type(rec) ~= 'table' or rec.relay_id ~= ARGV[1] then return 0 end\n"
        "  redis.call('DEL', KEYS[1])\n"
        "end\n"
        "redis.call('PUBLISH', ARGV[3], ARGV[2])\n"
        "return 1\n",
};

struct registry {
    struct relay *r;
    struct event *beat;
    char sha[SCRIPT_COUNT][41];
    unsigned inflight;
    bool stopped;
    bool warned;                /* a write failed since Redis was last up */
};

struct op;
typedef void (*op_done_fn)(struct op *op, const struct redis_reply *reply, const char *err);

/* One command in flight, owning copies of its arguments. */
struct op {
    struct registry *g;
    int script;                  /* enum script, or -1 for a plain command */
    int loads;                   /* SCRIPT LOAD of this enum script, or -1 */
    int argc;
    char *argv[OP_MAX_ARGS];
    bool retried;                /* sent again with EVAL after NOSCRIPT */
    op_done_fn done;
    char stream[STREAM_NAME_MAX + 1];
    char publisher[SLP_ID_MAX + 1];
    bool announce;
    registry_lease_cb lease_cb;
    void *lease_arg;
};

/* ------------------------------------------------------------------------ */
/* Commands                                                                 */

static struct op *op_new(struct registry *g, int script, op_done_fn done)
{
    struct op *op = calloc(1, sizeof(*op));
    if (op != NULL) {
        op->g = g;
        op->script = script;
        op->loads = -1;
        op->done = done;
    }
    return op;
}

static void op_free(struct op *op)
{
    for (int i = 0; i < op->argc; i++)
        free(op->argv[i]);
    free(op);
}

/* Adds the arguments (NULL-terminated). Returns 0 or -1. */
static int op_args(struct op *op, ...)
{
    va_list ap;
    va_start(ap, op);
    const char *a;
    int rc = 0;
    while ((a = va_arg(ap, const char *)) != NULL) {
        if (op->argc == OP_MAX_ARGS || (op->argv[op->argc] = strdup(a)) == NULL) {
            rc = -1;
            break;
        }
        op->argc++;
    }
    va_end(ap);
    return rc;
}

static bool is_cancelled(const char *err)
{
    return err != NULL && strcmp(err, "cancelled") == 0;
}

static void on_reply(const struct redis_reply *reply, const char *err, void *arg);

static int op_send(struct op *op)
{
    const char *argv[OP_MAX_ARGS + 2];
    size_t len[OP_MAX_ARGS + 2];
    int n = 0;
    if (op->script >= 0) {
        const char *sha = op->g->sha[op->script];
        bool have = sha[0] != '\0' && !op->retried;
        argv[n++] = have ? "EVALSHA" : "EVAL";
        argv[n++] = have ? sha : script_text[op->script];
    }
    for (int i = 0; i < op->argc; i++)
        argv[n++] = op->argv[i];
    for (int i = 0; i < n; i++)
        len[i] = strlen(argv[i]);
    return redis_commandv(op->g->r->redis, on_reply, op, n, argv, len);
}

/* Sends <op>, or frees it. Returns 0 or -1. */
static int op_start(struct op *op)
{
    if (op_send(op) == -1) {
        op_free(op);
        return -1;
    }
    op->g->inflight++;
    return 0;
}

static void on_reply(const struct redis_reply *reply, const char *err, void *arg)
{
    struct op *op = arg;
    struct registry *g = op->g;
    if (err != NULL && strncmp(err, "NOSCRIPT", 8) == 0 && !op->retried) {
        op->retried = true;
        g->sha[op->script][0] = '\0';
        if (op_send(op) == 0)
            return;
    }
    g->inflight--;
    if (err != NULL && !is_cancelled(err) && !g->warned && redis_is_up(g->r->redis)) {
        g->warned = true;
        log_warn("redis: registry: %s", err);
    }
    if (op->done != NULL)
        op->done(op, reply, err);
    op_free(op);
    if (!is_cancelled(err))
        relay_check_drained(g->r);
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                     */

/* The fields of the stream's PUBLISH frame, or false. */
static bool publish_fields(const struct stream *s, struct slp_frame *f)
{
    return s->publish != NULL && slp_decode(s->publish->buf.data, s->publish->buf.len, f) == SLP_OK;
}

static char *dump(json_t *v)
{
    char *out = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    return out;
}

char *registry_record(const struct relay *r, const struct stream *s)
{
    struct slp_frame f;
    char started[32];
    if (!publish_fields(s, &f))
        return NULL;
    const struct slp_publish *p = &f.publish;
    clock_rfc3339(started, sizeof(started), p->started_us);
    return dump(json_pack("{s:s, s:s, s:s, s:s%, s:s%, s:s%, s:s%, s:s}",
                          "name", s->name, "relay", r->advertise, "relay_id", r->d->node_id,
                          "ingest", p->node.p, p->node.len,
                          "protocol", p->protocol.p, p->protocol.len,
                          "client", p->client.p, p->client.len,
                          "publisher", p->publisher.p, p->publisher.len,
                          "started_at", started));
}

static char *start_event(const struct relay *r, const struct stream *s)
{
    struct slp_frame f;
    char at[32];
    if (!publish_fields(s, &f))
        return NULL;
    const struct slp_publish *p = &f.publish;
    clock_rfc3339(at, sizeof(at), clock_wall_us());
    return dump(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s%, s:s%, s:s%}",
                          "type", "stream.start", "at", at, "stream", s->name,
                          "relay", r->advertise, "relay_id", r->d->node_id,
                          "ingest", p->node.p, p->node.len,
                          "protocol", p->protocol.p, p->protocol.len,
                          "publisher", p->publisher.p, p->publisher.len));
}

static char *stop_event(const struct relay *r, const struct stream *s, const char *reason)
{
    char at[32];
    clock_rfc3339(at, sizeof(at), clock_wall_us());
    return dump(json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "stream.stop", "at", at,
                          "stream", s->name, "relay_id", r->d->node_id, "reason", reason));
}

/* ------------------------------------------------------------------------ */
/* The publish lease                                                        */

static void on_lease(struct op *op, const struct redis_reply *reply, const char *err)
{
    char holder[SLP_ID_MAX + 1];
    size_t len = 0;
    const char *v = reply ? redis_reply_str(reply, &len) : NULL;
    if (err != NULL || reply == NULL) {
        op->lease_cb(LEASE_ANSWER_ERROR, NULL, op->lease_arg);
    } else if (redis_reply_type(reply) == REDIS_R_NIL) {
        op->lease_cb(LEASE_ANSWER_NONE, NULL, op->lease_arg);
    } else if (redis_reply_type(reply) == REDIS_R_STRING && v != NULL) {
        /* a value that is no publisher id (too long, a NUL inside) matches nobody */
        bool id = len <= SLP_ID_MAX && memchr(v, '\0', len) == NULL;
        snprintf(holder, sizeof(holder), "%.*s", (int)(len < SLP_ID_MAX ? len : SLP_ID_MAX), v);
        op->lease_cb(LEASE_ANSWER_HOLDER, id ? holder : "(not a publisher id)", op->lease_arg);
    } else {
        op->lease_cb(LEASE_ANSWER_ERROR, NULL, op->lease_arg);
    }
}

int registry_lease_get(struct registry *g, const char *name, registry_lease_cb cb, void *arg)
{
    char key[128];
    struct op *op = op_new(g, -1, on_lease);
    if (op == NULL)
        return -1;
    op->lease_cb = cb;
    op->lease_arg = arg;
    snprintf(key, sizeof(key), "sluice:lease:publish:%s", name);
    if (op_args(op, "GET", key, NULL) == -1) {
        op_free(op);
        return -1;
    }
    return op_start(op);
}

/* ------------------------------------------------------------------------ */
/* Stream records and events                                                */

static void on_beat(struct op *op, const struct redis_reply *reply, const char *err)
{
    struct relay *r = op->g->r;
    if (err != NULL || reply == NULL || redis_reply_len(reply) < 1)
        return;
    long long written = redis_reply_int(redis_reply_at(reply, 0));
    struct stream *s = stream_find(r, op->stream, strlen(op->stream));
    bool ours = s != NULL && s->state == STREAM_LIVE && strcmp(s->publisher_id, op->publisher) == 0;
    if (written == 1) {
        if (ours && op->announce)
            s->announced = true;
        return;
    }
    size_t len = 0;
    const char *h = redis_reply_len(reply) >= 2 ? redis_reply_str(redis_reply_at(reply, 1), &len)
                                                : NULL;
    char holder[SLP_ID_MAX + 1];
    snprintf(holder, sizeof(holder), "%.*s", (int)(len < SLP_ID_MAX ? len : SLP_ID_MAX),
             h ? h : "");
    if (ours)
        stream_lease_moved(r, op->stream, op->publisher, holder);
}

static void beat_stream(struct registry *g, struct stream *s)
{
    struct relay *r = g->r;
    char key[96], lease[128], ttl[24];
    if (s->state != STREAM_LIVE || s->record == NULL || !redis_is_up(r->redis))
        return;
    char *event = s->announced ? NULL : start_event(r, s);
    struct op *op = op_new(g, SCRIPT_BEAT, on_beat);
    if (op == NULL) {
        free(event);
        return;
    }
    snprintf(key, sizeof(key), "sluice:stream:%s", s->name);
    snprintf(lease, sizeof(lease), "sluice:lease:publish:%s", s->name);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)(2 * r->cfg->heartbeat_ms));
    snprintf(op->stream, sizeof(op->stream), "%s", s->name);
    snprintf(op->publisher, sizeof(op->publisher), "%s", s->publisher_id);
    op->announce = event != NULL;
    if (op_args(op, "2", key, lease, s->record, s->publisher_id, ttl, event ? event : "",
                EVENTS, NULL) == -1)
        op_free(op);
    else
        op_start(op);
    free(event);
}

void registry_stream_live(struct registry *g, struct stream *s)
{
    if (!g->stopped)
        beat_stream(g, s);
}

void registry_stream_ended(struct registry *g, struct stream *s, const char *reason)
{
    struct relay *r = g->r;
    char key[96];
    if (!redis_is_up(r->redis))
        return;                   /* the record expires by itself */
    char *event = stop_event(r, s, reason);
    struct op *op = event ? op_new(g, SCRIPT_END, NULL) : NULL;
    snprintf(key, sizeof(key), "sluice:stream:%s", s->name);
    if (op != NULL) {
        if (op_args(op, "1", key, r->d->node_id, event, EVENTS, NULL) == -1)
            op_free(op);
        else
            op_start(op);
    }
    free(event);
}

/* ------------------------------------------------------------------------ */
/* Heartbeat                                                                */

static void count_live(struct stream *s, void *arg)
{
    *(unsigned *)arg += s->state != STREAM_IDLE;
}

static void beat_relay(struct registry *g)
{
    struct relay *r = g->r;
    char key[160], at[32], ttl[24];
    unsigned live = 0;
    stream_foreach(r, count_live, &live);
    clock_rfc3339(at, sizeof(at), clock_wall_us());
    char *record = dump(json_pack("{s:s, s:s, s:i, s:i, s:s}", "id", r->d->node_id,
                                  "address", r->advertise, "streams", (json_int_t)live,
                                  "subscribers", (json_int_t)r->nsubscribers, "updated_at", at));
    struct op *op = record ? op_new(g, -1, NULL) : NULL;
    snprintf(key, sizeof(key), "sluice:relay:%s", r->d->node_id);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)(2 * r->cfg->heartbeat_ms));
    if (op != NULL) {
        if (op_args(op, "SET", key, record, "PX", ttl, NULL) == -1)
            op_free(op);
        else
            op_start(op);
    }
    free(record);
}

static void beat_one(struct stream *s, void *arg)
{
    beat_stream(arg, s);
}

static void heartbeat(struct registry *g)
{
    if (g->stopped || !redis_is_up(g->r->redis))
        return;
    beat_relay(g);
    stream_foreach(g->r, beat_one, g);
}

static void on_beat_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    heartbeat(arg);
}

static void on_loaded(struct op *op, const struct redis_reply *reply, const char *err)
{
    size_t len = 0;
    const char *sha = reply && !err ? redis_reply_str(reply, &len) : NULL;
    if (sha != NULL && len == 40)
        snprintf(op->g->sha[op->loads], sizeof(op->g->sha[op->loads]), "%.*s", (int)len, sha);
}

static void on_redis_state(bool up, void *arg)
{
    struct registry *g = arg;
    metric_set(metric_at(g->r->fam[M_REDIS_UP]), up ? 1 : 0);
    if (!up) {
        log_warn("redis down: media goes on; the registry catches up when it is back");
        for (int i = 0; i < SCRIPT_COUNT; i++)
            g->sha[i][0] = '\0';
        return;
    }
    g->warned = false;
    for (int i = 0; i < SCRIPT_COUNT; i++) {
        struct op *op = op_new(g, -1, on_loaded);
        if (op != NULL)
            op->loads = i;
        if (op != NULL && op_args(op, "SCRIPT", "LOAD", script_text[i], NULL) == 0)
            op_start(op);
        else if (op != NULL)
            op_free(op);
    }
    heartbeat(g);                 /* records (and missed stream.start) at once */
}

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */

struct registry *registry_new(struct relay *r)
{
    struct registry *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->r = r;
    g->beat = event_new(r->d->base, -1, EV_PERSIST, on_beat_timer, g);
    if (g->beat == NULL) {
        free(g);
        return NULL;
    }
    struct timeval tv = clock_tv_ms(r->cfg->heartbeat_ms);
    event_add(g->beat, &tv);
    redis_set_state_cb(r->redis, on_redis_state, g);
    return g;
}

void registry_stop(struct registry *g)
{
    if (g->stopped)
        return;
    g->stopped = true;
    event_del(g->beat);
    char key[160];
    snprintf(key, sizeof(key), "sluice:relay:%s", g->r->d->node_id);
    struct op *op = op_new(g, -1, NULL);
    if (op != NULL && op_args(op, "DEL", key, NULL) == 0)
        op_start(op);
    else if (op != NULL)
        op_free(op);
}

bool registry_busy(const struct registry *g)
{
    return g != NULL && g->inflight > 0;
}

void registry_free(struct registry *g)
{
    if (g == NULL)
        return;
    event_free(g->beat);
    free(g);
}
