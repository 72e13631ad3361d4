/* One stream: see stream.h and docs/hls.md. */
#include "stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "blob.h"
#include "hls.h"
#include "link.h"
#include "packager.h"
#include "records.h"
#include "sluice/clock.h"
#include "sluice/daemon.h"
#include "sluice/leasekeep.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/redis.h"

#define SLOTS (PL_MAX_ENTRIES + PL_MAX_ENTRIES / 2 + 2)   /* segments kept in memory */
#define MAX_PENDING 4          /* segments waiting for their state write */
#define RETRY_MS 1000
#define STATE_TTL_MS 86400000  /* sluice:hls:<name> lives a day past its last write */
#define ATTEMPT_SLACK_MS 50    /* after the holder's lease should expire */
#define IDLE_TIMEOUT_MS 20000  /* SLP: a relay silent this long is gone */
#define MAX_KNOWN 100000       /* streams known (live anywhere), about 600 bytes each */

/* Writes the state only while we hold the lease. KEYS: lease, state. ARGV:
 * holder, state JSON, TTL ms. Returns 1 (written), 0 (no lease: Redis lost
 * it, we take it again) or the other holder (not written). */
static const char WRITE_SCRIPT[] =
    "local h = redis.call('GET', KEYS[1]) "
    "if h == ARGV[1] then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) return 1 end "
    "if h then return h end return 0";

struct seg_slot {
    uint64_t epoch, seq;
    struct blob *b;
    char name[PL_URI_MAX];
};

/* A segment (or only a playlist change) waiting for its state write. */
struct pending {
    struct blob *seg;           /* NULL: a playlist change only (EXT-X-ENDLIST) */
    uint64_t epoch, seq;
    char seg_name[PL_URI_MAX];
    struct blob *playlist;
    unsigned target;
    uint64_t version, first_seq;
    struct pstate st;
    int64_t end_wall_us;        /* ingest clock at the segment's end, for the latency */
    int64_t duration_ms;
    enum seg_cut cut;
    bool disc;
};

/* A Redis command in flight; outlives the stream if the stream goes first. */
struct sop {
    struct stream *s;
};

struct stream {
    struct hls *h;
    char name[STREAM_NAME_MAX + 1];
    char key_lease[96], key_state[96], key_stream[96];
    enum stream_role role;
    bool live;                  /* the catalog sees it live */
    bool ending;                /* EXT-X-ENDLIST is being published: release after */
    bool stopping;              /* the daemon stops: release after the last write */
    bool releasing;             /* counted in h->releasing */
    struct leasekeep *lease;
    struct event *timer;        /* lease attempts (candidate), retries (claiming) */
    struct sop *op_pttl, *op_load, *op_write, *op_lookup;
    /* the source */
    char relay[RELAY_ADDR_MAX + 1];
    char publisher[4 * SLP_ID_MAX + 8];   /* escaped */
    struct link *link;
    int64_t grace_until_ms, next_link_ms, last_media_ms;
    /* packaging */
    struct packager *pk;
    struct pstate prev;         /* read when claiming */
    bool prev_valid;
    struct pending *pending;    /* MAX_PENDING, allocated while owned */
    unsigned npending;
    /* what is served */
    struct blob *playlist;
    unsigned target;
    uint64_t version;
    struct seg_slot *slots;     /* SLOTS, allocated while something is served */
    unsigned shead, nslots;
    int64_t linger_until_ms;    /* a candidate serving what it packaged, until then */
    bool served_ended;          /* what is served carries EXT-X-ENDLIST, and the stream
                                   has not been live anywhere since */
    int64_t written_ms;         /* when the served playlist was last written to disk */
    uint64_t scan_gen;          /* the catalog's scan that last saw it live */
    struct stream *hnext;
};

static const char *const role_names[SR_COUNT] = { "candidate", "claiming", "live", "grace" };

const char *stream_role_name(enum stream_role r)
{
    return (unsigned)r < SR_COUNT ? role_names[r] : "?";
}

enum stream_role stream_role(const struct stream *s)
{
    return s->role;
}

const char *stream_name(const struct stream *s)
{
    return s->name;
}

bool stream_owned(const struct stream *s)
{
    return s->role != SR_CANDIDATE;
}

bool stream_live(const struct stream *s)
{
    return s->live;
}

uint64_t stream_scan_gen(const struct stream *s)
{
    return s->scan_gen;
}

/* ---- the table ------------------------------------------------------------ */

static unsigned hash(const char *name)
{
    uint32_t x = 2166136261u;
    for (; *name; name++)
        x = (x ^ (uint8_t)*name) * 16777619u;
    return x;
}

struct stream *hls_find(struct hls *h, const char *name)
{
    for (struct stream *s = h->bucket[hash(name) % h->nbuckets]; s != NULL; s = s->hnext) {
        if (strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

void hls_insert(struct hls *h, struct stream *s)
{
    unsigned b = hash(s->name) % h->nbuckets;
    s->hnext = h->bucket[b];
    h->bucket[b] = s;
    h->nstreams++;
}

void hls_remove(struct hls *h, struct stream *s)
{
    for (struct stream **p = &h->bucket[hash(s->name) % h->nbuckets]; *p; p = &(*p)->hnext) {
        if (*p == s) {
            *p = s->hnext;
            h->nstreams--;
            return;
        }
    }
}

void hls_each(struct hls *h, void (*fn)(struct stream *s, void *arg), void *arg)
{
    for (unsigned b = 0; b < h->nbuckets; b++) {
        for (struct stream *s = h->bucket[b], *next; s != NULL; s = next) {
            next = s->hnext;
            fn(s, arg);
        }
    }
}

/* ---- helpers -------------------------------------------------------------- */

static struct sop *sop_new(struct stream *s, struct sop **slot)
{
    struct sop *op = malloc(sizeof(*op));
    if (op != NULL) {
        op->s = s;
        *slot = op;
    }
    return op;
}

/* The stream an op belongs to (NULL if gone); frees the op and clears <slot>'s
 * pointer to it. */
static struct stream *sop_done(struct sop *op, struct sop **(*slot)(struct stream *))
{
    struct stream *s = op->s;
    free(op);
    if (s != NULL)
        *slot(s) = NULL;
    return s;
}

static struct sop **slot_pttl(struct stream *s) { return &s->op_pttl; }
static struct sop **slot_load(struct stream *s) { return &s->op_load; }
static struct sop **slot_write(struct stream *s) { return &s->op_write; }
static struct sop **slot_lookup(struct stream *s) { return &s->op_lookup; }

static void detach(struct sop *op)
{
    if (op != NULL)
        op->s = NULL;
}

static void set_timer(struct stream *s, int64_t ms)
{
    struct timeval tv = clock_tv_ms(ms > 0 ? ms : 0);
    evtimer_add(s->timer, &tv);
}

static void set_role(struct stream *s, enum stream_role r)
{
    bool owned = s->role != SR_CANDIDATE, will = r != SR_CANDIDATE;
    if (owned != will)
        s->h->nowned += will ? 1 : (unsigned)-1;
    s->role = r;
}

/* ---- what is served ------------------------------------------------------- */

struct blob *stream_playlist(const struct stream *s, unsigned *target, uint64_t *version)
{
    *target = s->target;
    *version = s->version;
    return s->playlist;
}

struct blob *stream_segment(const struct stream *s, uint64_t epoch, uint64_t seq)
{
    for (unsigned i = 0; i < s->nslots; i++) {
        const struct seg_slot *sl = &s->slots[(s->shead + i) % SLOTS];
        if (sl->seq == seq && sl->epoch == epoch)
            return sl->b;
    }
    return NULL;
}

static void evict_first(struct stream *s, bool from_disk)
{
    struct seg_slot *sl = &s->slots[s->shead];
    if (from_disk)
        disk_remove(&s->h->disk, s->name, sl->name);
    blob_unref(sl->b);
    sl->b = NULL;
    s->shead = (s->shead + 1) % SLOTS;
    s->nslots--;
}

/* Keeps the segments of the playlist and, for viewers still fetching them
 * (RFC 8216 section 6.2.2), <window> + 1 more that left it. */
static void evict_old(struct stream *s, uint64_t first_seq)
{
    uint64_t keep = (uint64_t)s->h->cfg->window + 1;
    while (s->nslots > 0) {
        const struct seg_slot *sl = &s->slots[s->shead];
        if (sl->seq + keep >= first_seq && sl->seq <= first_seq + SLOTS)
            break;
        evict_first(s, true);
    }
}

static void add_slot(struct stream *s, const struct pending *p)
{
    if (s->slots == NULL && (s->slots = calloc(SLOTS, sizeof(*s->slots))) == NULL) {
        log_error("stream %s: out of memory: segment %" PRIu64 " not served", s->name, p->seq);
        return;
    }
    if (s->nslots == SLOTS)
        evict_first(s, true);
    struct seg_slot *sl = &s->slots[(s->shead + s->nslots) % SLOTS];
    sl->epoch = p->epoch;
    sl->seq = p->seq;
    sl->b = blob_ref(p->seg);
    memcpy(sl->name, p->seg_name, sizeof(sl->name));
    s->nslots++;
}

/* Forgets everything served (memory and disk). */
static void drop_served(struct stream *s)
{
    while (s->nslots > 0)
        evict_first(s, false);
    free(s->slots);
    s->slots = NULL;
    s->shead = 0;
    blob_unref(s->playlist);
    s->playlist = NULL;
    s->target = 0;
    s->served_ended = false;
    disk_remove_stream(&s->h->disk, s->name);
    s->linger_until_ms = 0;
}

/* ---- leases --------------------------------------------------------------- */

static void on_lease(enum leasekeep_event ev, const char *other, void *arg);
static void attempt(struct stream *s);
static void maybe_free(struct stream *s);
static void stop_packaging(struct stream *s);

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
        stop_packaging(s);
        set_role(s, SR_CANDIDATE);
    }
    if (s->live && !s->h->stopping)
        set_timer(s, RETRY_MS);
    maybe_free(s);
}

static void on_handed_over(const struct redis_reply *reply, const char *err, void *arg)
{
    struct stream *s = sop_done(arg, slot_write);
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
    struct sop *op = sop_new(s, &s->op_write);
    if (op != NULL && redis_command(s->h->redis, on_handed_over, op, "EVAL %s 1 %s %s %s",
                                    HANDOVER_SCRIPT, s->key_lease, s->h->holder, msg) == 0)
        return;
    free(op);
    s->op_write = NULL;
    leasekeep_release(s->lease);       /* LK_RELEASED follows */
}

static void release_lease(struct stream *s)
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
    struct stream *s = sop_done(arg, slot_pttl);
    if (s == NULL || s->role != SR_CANDIDATE)
        return;
    long long ms = reply && redis_reply_type(reply) == REDIS_R_INTEGER ? redis_reply_int(reply)
                                                                      : -3;
    if (err != NULL || ms == -3)
        set_timer(s, RETRY_MS);
    else if (ms < 0)                    /* gone meanwhile (or no TTL: never ours) */
        set_timer(s, ms == -2 ? ATTEMPT_SLACK_MS : s->h->cfg->lease_ttl_ms);
    else
        set_timer(s, ms + ATTEMPT_SLACK_MS < s->h->cfg->lease_ttl_ms
                         ? ms + ATTEMPT_SLACK_MS : s->h->cfg->lease_ttl_ms);
}

/* Refused: try again when the holder's lease would run out unrenewed. */
static void refused(struct stream *s, const char *other)
{
    log_debug("stream %s: packaged by %s", s->name, other ? other : "another origin");
    struct sop *op = sop_new(s, &s->op_pttl);
    if (op == NULL ||
        redis_command(s->h->redis, on_pttl, op, "PTTL %s", s->key_lease) == -1) {
        free(op);
        s->op_pttl = NULL;
        set_timer(s, RETRY_MS);
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
        set_timer(s, 2 * RETRY_MS);
        return;
    }
    if (!hls_may_take(h, clock_mono_ms(), &wait)) {
        set_timer(s, wait);
        return;
    }
    struct leasekeep_options o = { .key = s->key_lease, .holder = h->holder,
                                   .ttl_ms = h->cfg->lease_ttl_ms };
    s->lease = leasekeep_start(h->d->base, h->redis, &o, on_lease, s);
    if (s->lease == NULL)
        set_timer(s, RETRY_MS);
}

static void on_timer(evutil_socket_t fd, short what, void *arg);

/* ---- packaging: publishing ------------------------------------------------ */

static void lost(struct stream *s, const char *other);
static void write_next(struct stream *s);

static void pending_clear(struct pending *p)
{
    blob_unref(p->seg);
    blob_unref(p->playlist);
    p->seg = p->playlist = NULL;
}

/* The first pending change is recorded (or Redis could not be asked): serve
 * it, write it to disk, count it. */
static void apply(struct stream *s, struct pending *p)
{
    struct hls *h = s->h;
    struct hls_stats *st = &h->stats;
    if (p->seg != NULL) {
        add_slot(s, p);
        if (disk_write(&h->disk, s->name, p->seg_name, p->seg->data, p->seg->len) == -1)
            metric_add(st->disk_errors, 1);
        metric_add(st->segments[p->cut], 1);
        metric_observe(st->segment_seconds, (double)p->duration_ms / 1000.0);
        if (p->disc)
            metric_add(st->discontinuities, 1);
    }
    blob_unref(s->playlist);
    s->playlist = blob_ref(p->playlist);
    s->target = p->target;
    s->version = p->version;
    s->served_ended = p->st.ended;
    s->written_ms = clock_mono_ms();
    if (disk_write(&h->disk, s->name, "index.m3u8", p->playlist->data, p->playlist->len) == -1)
        metric_add(st->disk_errors, 1);
    evict_old(s, p->first_seq);
    if (p->seg != NULL && p->end_wall_us > 0)
        metric_observe(st->latency, (double)(clock_wall_us() - p->end_wall_us) / 1e6);
}

/* After the last pending change: release the lease if we are done with it. */
static void after_writes(struct stream *s)
{
    if (s->npending == 0 && s->op_write == NULL && (s->ending || s->stopping))
        release_lease(s);
}

/* The state write for the first pending change came back with <res>. */
static void finish_first(struct stream *s, enum hls_state_result res, const char *other)
{
    metric_add(s->h->stats.state_writes[res], 1);
    if (res == WR_LOST) {
        lost(s, other);
        return;
    }
    apply(s, &s->pending[0]);
    pending_clear(&s->pending[0]);
    memmove(&s->pending[0], &s->pending[1], (s->npending - 1) * sizeof(s->pending[0]));
    s->npending--;
    if (s->npending > 0)
        write_next(s);
    else
        after_writes(s);
}

static void on_written(const struct redis_reply *reply, const char *err, void *arg)
{
    struct stream *s = sop_done(arg, slot_write);
    if (s == NULL || s->npending == 0)
        return;
    if (err != NULL) {
        log_warn("stream %s: state not recorded (%s); publishing anyway", s->name, err);
        finish_first(s, WR_ERROR, NULL);
    } else if (redis_reply_type(reply) == REDIS_R_STRING) {
        char other[PSTATE_OWNER_MAX + 1];
        size_t len;
        const char *o = redis_reply_str(reply, &len);
        log_escape(other, sizeof(other), o, len);
        finish_first(s, WR_LOST, other);
    } else {
        finish_first(s, WR_OK, NULL);   /* 1, or 0: no lease right now (leasekeep takes it) */
    }
}

/* Sends the state write of the first pending change, or applies it at once
 * when Redis cannot be asked (an owner goes on without Redis). */
static void write_next(struct stream *s)
{
    while (s->npending > 0 && s->op_write == NULL) {
        struct pending *p = &s->pending[0];
        char *json = pstate_format(&p->st, clock_wall_us());
        struct sop *op = json ? sop_new(s, &s->op_write) : NULL;
        char ttl[24];
        snprintf(ttl, sizeof(ttl), "%d", STATE_TTL_MS);
        if (op != NULL &&
            redis_command(s->h->redis, on_written, op, "EVAL %s 2 %s %s %s %s %s", WRITE_SCRIPT,
                          s->key_lease, s->key_state, s->h->holder, json, ttl) == 0) {
            free(json);
            return;
        }
        free(json);
        free(op);
        s->op_write = NULL;
        unsigned before = s->npending;
        finish_first(s, WR_ERROR, NULL);
        if (s->npending >= before)      /* given up meanwhile */
            return;
    }
}

/* Queues a playlist change (with the segment <out>, if not NULL) for its
 * state write. Takes out->seg.data. */
static void publish(struct stream *s, struct packaged *out)
{
    struct packager *pk = s->pk;
    if (s->pending == NULL && (s->pending = calloc(MAX_PENDING, sizeof(*s->pending))) == NULL) {
        log_error("stream %s: out of memory: segment not published", s->name);
        if (out != NULL)
            free(out->seg.data);
        return;
    }
    if (s->npending == MAX_PENDING) {   /* Redis is slow: do not wait for it */
        log_warn("stream %s: %u segments wait for Redis; publishing the oldest", s->name,
                 s->npending);
        detach(s->op_write);
        s->op_write = NULL;
        finish_first(s, WR_ERROR, NULL);
    }
    struct pending *p = &s->pending[s->npending];
    memset(p, 0, sizeof(*p));
    if (out != NULL) {
        p->seg = blob_wrap(out->seg.data, out->seg.len, out->seg.cap);
        out->seg.data = NULL;
        p->epoch = pk->epoch;
        p->seq = out->entry.seq;
        memcpy(p->seg_name, out->entry.uri, sizeof(p->seg_name));
        p->end_wall_us = out->seg.end_wall_us;
        p->duration_ms = out->entry.duration_ms;
        p->cut = out->seg.cut;
        p->disc = out->entry.disc;
        if (p->seg == NULL) {
            log_error("stream %s: out of memory: segment %" PRIu64 " lost", s->name, p->seq);
            return;
        }
    }
    char text[PLAYLIST_RENDER_MAX];
    size_t n = playlist_render(&pk->pl, text, sizeof(text));
    p->playlist = blob_copy(text, n < sizeof(text) ? n : sizeof(text) - 1);
    if (p->playlist == NULL) {
        pending_clear(p);
        log_error("stream %s: out of memory: playlist not published", s->name);
        return;
    }
    p->target = pk->pl.target;
    p->version = pk->pl.changes;
    p->first_seq = playlist_first_seq(&pk->pl);
    packager_state(pk, &p->st);
    snprintf(p->st.owner, sizeof(p->st.owner), "%s", s->h->holder);
    s->npending++;
    metric_add(s->h->stats.clamped, (double)pk->pl.clamped);
    pk->pl.clamped = 0;
    write_next(s);
}

/* Ends the open segment (the source went away, or stalled) and publishes it. */
static void flush(struct stream *s, bool discontinuity)
{
    struct packaged out;
    if (s->pk != NULL && packager_flush(s->pk, discontinuity, &out) == 1)
        publish(s, &out);
}

/* ---- the source ----------------------------------------------------------- */

static void enter_grace(struct stream *s, int64_t retry_ms);
static void open_link(struct stream *s);

static void on_accepted(void *arg)
{
    struct stream *s = arg;
    log_debug("stream %s: subscribed at relay %s", s->name, s->relay);
}

static void on_publish(const struct slp_publish *p, void *arg)
{
    struct stream *s = arg;
    char pub[4 * SLP_ID_MAX + 8], node[4 * SLP_ID_MAX + 8];
    log_escape(pub, sizeof(pub), p->publisher.p, p->publisher.len);
    log_escape(node, sizeof(node), p->node.p, p->node.len);
    log_info("stream %s: live from publisher %s on %s, relay %s%s", s->name, pub, node,
             s->relay, s->role == SR_GRACE ? " (back within the grace)" : "");
    if (s->publisher[0] != '\0' && strcmp(s->publisher, pub) != 0)
        packager_discontinuity(s->pk);
    snprintf(s->publisher, sizeof(s->publisher), "%s", pub);
    s->last_media_ms = clock_mono_ms();
    set_role(s, SR_LIVE);
}

static void on_media(const struct slp_frame *f, void *arg)
{
    struct stream *s = arg;
    struct hls_stats *st = &s->h->stats;
    s->last_media_ms = clock_mono_ms();
    if (s->role == SR_GRACE)
        set_role(s, SR_LIVE);
    struct seg_frame fr = { .flags = f->flags, .pts = f->media.pts, .wall_us = f->media.wall_us,
                            .ts = f->media.ts, .len = f->media.ts_len };
    metric_add(st->media_bytes, (double)fr.len);
    uint64_t dropped = segmenter_dropped(s->pk->seg);
    struct packaged out;
    int rc = packager_feed(s->pk, &fr, &out);
    metric_add(st->frames_dropped, (double)(segmenter_dropped(s->pk->seg) - dropped));
    if (rc == 1)
        publish(s, &out);
    else if (rc == -1)
        log_error("stream %s: out of memory: media dropped to the next keyframe", s->name);
}

static void on_ended(enum link_end why, const char *detail, void *arg)
{
    struct stream *s = arg;
    s->link = NULL;
    if (why == LINK_END_EOS)
        log_info("stream %s: end of stream from relay %s: %s", s->name, s->relay, detail);
    else
        log_warn("stream %s: relay link ended (%s): %s", s->name, link_end_name(why), detail);
    if (why != LINK_END_EOS && why != LINK_END_REFUSED)
        metric_add(s->h->stats.relay_failures, 1);
    flush(s, true);
    if (s->role == SR_LIVE || s->role == SR_GRACE)
        enter_grace(s, why == LINK_END_EOS ? 0 : RETRY_MS);
}

static const struct link_handler link_handler = { on_accepted, on_publish, on_media, on_ended };

static void open_link(struct stream *s)
{
    struct hls *h = s->h;
    int64_t wait = h->cfg->end_grace_ms;
    if (s->role == SR_GRACE)
        wait = s->grace_until_ms - clock_mono_ms();
    struct link_options o = {
        .relay = s->relay, .stream = s->name, .node = h->d->node_id,
        .wait_ms = (uint32_t)(wait > 1000 ? wait : 1000),
        .connect_timeout_ms = h->cfg->relay_timeout_ms, .idle_timeout_ms = IDLE_TIMEOUT_MS,
    };
    s->next_link_ms = clock_mono_ms() + RETRY_MS;
    if (s->relay[0] == '\0')
        return;
    metric_add(h->stats.relay_links, 1);
    s->link = link_open(h->d->base, h->d->dns, &o, &link_handler, s);
    if (s->link == NULL)
        enter_grace(s, RETRY_MS);
}

static void enter_grace(struct stream *s, int64_t retry_ms)
{
    int64_t now = clock_mono_ms();
    if (s->role != SR_GRACE) {
        set_role(s, SR_GRACE);
        s->grace_until_ms = now + s->h->cfg->end_grace_ms;
        log_info("stream %s: no publisher; EXT-X-ENDLIST in %lld ms unless it comes back",
                 s->name, (long long)s->h->cfg->end_grace_ms);
    }
    s->next_link_ms = now + retry_ms;
}

static void on_lookup(const struct redis_reply *reply, const char *err, void *arg)
{
    struct stream *s = sop_done(arg, slot_lookup);
    if (s == NULL || s->role != SR_GRACE || s->link != NULL)
        return;
    size_t len;
    const char *v = reply && redis_reply_type(reply) == REDIS_R_STRING
                        ? redis_reply_str(reply, &len) : NULL;
    struct stream_record rec;
    char why[160];
    if (v != NULL && stream_record_parse(v, len, &rec, why, sizeof(why)) == 0 &&
        strcmp(rec.name, s->name) == 0) {
        snprintf(s->relay, sizeof(s->relay), "%s", rec.relay);
        open_link(s);
    } else if (err != NULL) {
        open_link(s);                   /* Redis is in trouble: wait at the relay we know */
    } else {
        s->next_link_ms = clock_mono_ms() + RETRY_MS;
    }
}

/* GRACE: where is the stream now? The stream record says; without Redis, we
 * wait at the relay we know (it holds subscribers until the stream is back). */
static void look_for_source(struct stream *s)
{
    s->next_link_ms = clock_mono_ms() + RETRY_MS;
    struct sop *op = sop_new(s, &s->op_lookup);
    if (op != NULL && redis_command(s->h->redis, on_lookup, op, "GET %s", s->key_stream) == 0)
        return;
    free(op);
    s->op_lookup = NULL;
    open_link(s);
}

/* ---- owning a stream: claim, end, loss ------------------------------------ */

static void start_packaging(struct stream *s)
{
    struct hls *h = s->h;
    const struct hls_config *c = h->cfg;
    struct packager_options o = {
        .target_us = c->target_duration_ms * 1000, .max_target_s = (unsigned)c->max_target_duration,
        .max_bytes = (size_t)c->max_segment_size, .window = (unsigned)c->window,
    };
    uint64_t epoch = s->prev_valid ? s->prev.epoch + 1 : 1;
    /* a playlist begun afresh starts its numbers at the wall clock in ms, so
     * that they stay above any an earlier owner used even if Redis forgot
     * its state (docs/hls.md, "Continuity") */
    uint64_t first = (uint64_t)(clock_wall_us() / 1000);
    packager_free(s->pk);
    s->pk = packager_new(&o, epoch, first, first);
    if (s->pk == NULL) {
        log_error("stream %s: out of memory", s->name);
        lost(s, NULL);
        return;
    }
    if (s->prev_valid && s->prev.has_segment) {
        packager_resume(s->pk, &s->prev);
        metric_add(h->stats.takeovers, 1);
        log_info("stream %s: packaging as epoch %" PRIu64 ", continuing %s's playlist after "
                 "segment %" PRIu64 "%s", s->name, epoch, s->prev.owner[0] ? s->prev.owner : "?",
                 s->prev.media_sequence, s->prev.ended ? " (which had ended)" : "");
    } else {
        log_info("stream %s: packaging as epoch %" PRIu64 ", a new playlist from %" PRIu64,
                 s->name, epoch, first);
    }
    s->publisher[0] = '\0';
    s->ending = false;
    s->linger_until_ms = 0;
    set_role(s, SR_LIVE);
    s->last_media_ms = clock_mono_ms();
    open_link(s);
}

static void on_claimed(const struct redis_reply *reply, const char *err, void *arg)
{
    struct stream *s = sop_done(arg, slot_write);
    if (s == NULL || s->role != SR_CLAIMING)
        return;
    if (err != NULL || redis_reply_type(reply) == REDIS_R_INTEGER) {
        if (err == NULL && redis_reply_int(reply) == 1) {
            start_packaging(s);
            return;
        }
        log_warn("stream %s: epoch not recorded (%s); trying again", s->name,
                 err ? err : "the lease is not in Redis");
        set_timer(s, RETRY_MS);
        return;
    }
    size_t len;
    const char *o = redis_reply_str(reply, &len);
    char other[PSTATE_OWNER_MAX + 1];
    log_escape(other, sizeof(other), o ? o : "", o ? len : 0);
    lost(s, other);
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
    char *json = pstate_format(&st, clock_wall_us());
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%d", STATE_TTL_MS);
    struct sop *op = json ? sop_new(s, &s->op_write) : NULL;
    if (op != NULL &&
        redis_command(s->h->redis, on_claimed, op, "EVAL %s 2 %s %s %s %s %s", WRITE_SCRIPT,
                      s->key_lease, s->key_state, s->h->holder, json, ttl) == 0) {
        free(json);
        return;
    }
    free(json);
    free(op);
    s->op_write = NULL;
    set_timer(s, RETRY_MS);
}

static void give_up(struct stream *s, const char *why)
{
    log_info("stream %s: not packaging: %s", s->name, why);
    set_role(s, SR_CANDIDATE);
    s->live = false;
    release_lease(s);
}

static void on_loaded(const struct redis_reply *reply, const char *err, void *arg)
{
    struct stream *s = sop_done(arg, slot_load);
    if (s == NULL || s->role != SR_CLAIMING)
        return;
    if (err != NULL || redis_reply_type(reply) != REDIS_R_ARRAY || redis_reply_len(reply) != 2) {
        log_warn("stream %s: cannot read its state (%s); trying again", s->name,
                 err ? err : "unexpected reply");
        set_timer(s, RETRY_MS);
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
    if (stream_record_parse(v, len, &r, why, sizeof(why)) == -1 || strcmp(r.name, s->name)) {
        log_error("stream %s: %s is unusable (%s)", s->name, s->key_stream, why);
        give_up(s, "no usable stream record");
        return;
    }
    snprintf(s->relay, sizeof(s->relay), "%s", r.relay);
    claim(s);
}

static void load(struct stream *s)
{
    struct sop *op = sop_new(s, &s->op_load);
    if (op != NULL && redis_command(s->h->redis, on_loaded, op, "MGET %s %s", s->key_state,
                                    s->key_stream) == 0)
        return;
    free(op);
    s->op_load = NULL;
    set_timer(s, RETRY_MS);
}

/* Drops the packaging (not what is served). */
static void stop_packaging(struct stream *s)
{
    if (s->link != NULL) {
        link_close(s->link);
        s->link = NULL;
    }
    detach(s->op_write);
    s->op_write = NULL;
    detach(s->op_load);
    s->op_load = NULL;
    detach(s->op_lookup);
    s->op_lookup = NULL;
    for (unsigned i = 0; i < s->npending; i++)
        pending_clear(&s->pending[i]);
    s->npending = 0;
    free(s->pending);
    s->pending = NULL;
    packager_free(s->pk);
    s->pk = NULL;
}

static void lost(struct stream *s, const char *other)
{
    log_warn("stream %s: lease lost to %s: stopping; serving what was published for %lld ms",
             s->name, other ? other : "?", (long long)s->h->cfg->linger_ms);
    metric_add(s->h->stats.leases_lost, 1);
    stop_packaging(s);
    set_role(s, SR_CANDIDATE);
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

/* The grace ran out: EXT-X-ENDLIST, recorded, then the lease goes. */
static void end_stream(struct stream *s)
{
    log_info("stream %s: no publisher for %lld ms: ending the playlist", s->name,
             (long long)s->h->cfg->end_grace_ms);
    if (s->link != NULL) {
        link_close(s->link);
        s->link = NULL;
    }
    flush(s, true);
    s->ending = true;
    s->live = false;
    if (s->pk != NULL && s->pk->pl.n > 0) {
        packager_end(s->pk);
        metric_add(s->h->stats.endlists, 1);
        publish(s, NULL);
    }
    set_role(s, SR_CANDIDATE);
    s->linger_until_ms = s->playlist || s->npending ? clock_mono_ms() + s->h->cfg->linger_ms : 0;
    after_writes(s);
}

static void on_lease(enum leasekeep_event ev, const char *other, void *arg)
{
    struct stream *s = arg;
    switch (ev) {
    case LK_HELD:
        if (s->h->stopping || !s->live) {
            release_lease(s);
            return;
        }
        log_info("stream %s: lease taken", s->name);
        stop_packaging(s);
        set_role(s, SR_CLAIMING);
        load(s);
        return;
    case LK_REFUSED:
        leasekeep_free(s->lease);
        s->lease = NULL;
        if (s->live && !s->h->stopping)
            refused(s, other);
        return;
    case LK_LOST:
        lost(s, other);
        return;
    case LK_RELEASED:
        released(s);
        return;
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct stream *s = arg;
    if (s->role == SR_CANDIDATE)
        attempt(s);
    else if (s->role == SR_CLAIMING && s->op_load == NULL && s->op_write == NULL)
        load(s);
}

/* ---- the catalog's view --------------------------------------------------- */

struct stream *stream_get(struct hls *h, const char *name)
{
    struct stream *s = hls_find(h, name);
    if (s != NULL)
        return s;
    if (!stream_name_valid(name) || h->nstreams >= MAX_KNOWN)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->h = h;
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(s->key_lease, sizeof(s->key_lease), "sluice:lease:hls:%s", name);
    snprintf(s->key_state, sizeof(s->key_state), "sluice:hls:%s", name);
    snprintf(s->key_stream, sizeof(s->key_stream), "sluice:stream:%s", name);
    s->timer = evtimer_new(h->d->base, on_timer, s);
    if (s->timer == NULL) {
        free(s);
        return NULL;
    }
    hls_insert(h, s);
    return s;
}

void stream_seen_live(struct stream *s, const char *relay)
{
    s->live = true;
    s->served_ended = false;    /* a newer playlist, here or elsewhere: stop advertising ours */
    s->scan_gen = s->h->scan_gen;
    if (s->role == SR_GRACE && relay != NULL && relay[0] != '\0' &&
        (s->link == NULL || strcmp(relay, s->relay) != 0)) {
        if (s->link != NULL)
            link_close(s->link);
        s->link = NULL;
        snprintf(s->relay, sizeof(s->relay), "%s", relay);
        log_info("stream %s: live again on relay %s", s->name, relay);
        open_link(s);
        return;
    }
    if (s->role == SR_CANDIDATE && s->lease == NULL && s->op_pttl == NULL &&
        !evtimer_pending(s->timer, NULL))
        set_timer(s, 0);
}

void stream_try_now(struct stream *s)
{
    if (s->live && s->role == SR_CANDIDATE && s->lease == NULL) {
        detach(s->op_pttl);
        s->op_pttl = NULL;
        set_timer(s, 0);
    }
}

static void maybe_free(struct stream *s)
{
    if (s->role == SR_CANDIDATE && !s->live && s->lease == NULL && s->linger_until_ms == 0 &&
        s->playlist == NULL && s->npending == 0 && !s->releasing) {
        hls_remove(s->h, s);
        stream_free(s);
    }
}

void stream_gone(struct stream *s)
{
    s->live = false;
    if (s->role != SR_CANDIDATE)
        return;                 /* an owner hears it from the relay */
    evtimer_del(s->timer);
    detach(s->op_pttl);
    s->op_pttl = NULL;
    if (s->lease != NULL) {     /* an attempt under way */
        release_lease(s);
        return;
    }
    maybe_free(s);
}

void stream_redis_up(struct stream *s)
{
    if (s->lease != NULL)
        leasekeep_redis_state(s->lease, true);
}

/* An ended playlist served during <linger> is written again every target
 * duration, as a live one would be, so that discovery keeps its origin key
 * alive and the edge keeps routing late viewers here until it is dropped.
 * Never again once the stream has been live since (here or elsewhere), nor
 * for a stream another origin took: that origin's discovery owns the key. */
static void keep_advertised(struct stream *s, int64_t now)
{
    int64_t every = s->h->cfg->target_duration_ms > 1000 ? s->h->cfg->target_duration_ms : 1000;
    if (!s->served_ended || s->live || s->playlist == NULL || now - s->written_ms < every)
        return;
    s->written_ms = now;
    if (disk_write(&s->h->disk, s->name, "index.m3u8", s->playlist->data, s->playlist->len) == -1)
        metric_add(s->h->stats.disk_errors, 1);
}

void stream_tick(struct stream *s, int64_t now)
{
    struct hls *h = s->h;
    int64_t stall = h->cfg->target_duration_ms > 1000 ? h->cfg->target_duration_ms : 1000;
    switch (s->role) {
    case SR_LIVE:
        /* no media for a target duration: publish what we have */
        if (s->link != NULL && s->pk != NULL && segmenter_open(s->pk->seg) &&
            now - s->last_media_ms >= stall) {
            log_info("stream %s: no media for %lld ms: publishing the segment under way",
                     s->name, (long long)(now - s->last_media_ms));
            flush(s, false);
        }
        return;
    case SR_GRACE:
        if (now >= s->grace_until_ms)
            end_stream(s);
        else if (s->link == NULL && s->op_lookup == NULL && now >= s->next_link_ms)
            look_for_source(s);
        return;
    case SR_CANDIDATE:
        if (s->linger_until_ms != 0 && now >= s->linger_until_ms && s->npending == 0) {
            log_info("stream %s: no longer served here", s->name);
            drop_served(s);
            maybe_free(s);
        } else if (s->linger_until_ms != 0) {
            keep_advertised(s, now);
        }
        return;
    default:
        return;
    }
}

void stream_stop(struct stream *s)
{
    evtimer_del(s->timer);
    detach(s->op_pttl);
    s->op_pttl = NULL;
    s->stopping = true;
    if (s->role == SR_LIVE || s->role == SR_GRACE) {
        if (s->link != NULL) {
            link_close(s->link);
            s->link = NULL;
        }
        flush(s, false);        /* what we have, recorded, for the next owner */
        after_writes(s);
        return;
    }
    release_lease(s);           /* claiming, or an attempt under way */
}

void stream_free(struct stream *s)
{
    if (s == NULL)
        return;
    stop_packaging(s);
    detach(s->op_pttl);
    leasekeep_free(s->lease);
    while (s->nslots > 0)
        evict_first(s, false);
    free(s->slots);
    blob_unref(s->playlist);
    if (s->timer)
        event_free(s->timer);
    free(s);
}
