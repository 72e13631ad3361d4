/* Publishers: see publisher.h. */
#include "publisher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "conn.h"
#include "known.h"
#include "registry.h"
#include "stream.h"
#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/slp.h"

/* A lease lookup in flight; <c> is cleared if the connection goes first. */
struct lease_check {
    struct conn *c;
};

void publisher_forget(struct conn *c)
{
    if (c->pub.check != NULL) {
        c->pub.check->c = NULL;          /* freed by its callback */
        c->pub.check = NULL;
    }
    chunk_unref(c->pub.publish);
    c->pub.publish = NULL;
}

static void refuse(struct conn *c, enum publish_verdict v, enum lease_answer a,
                   const char *holder, const char *name)
{
    if (v == PUBLISH_UNAVAILABLE)
        conn_error(c, SLP_E_UNAVAILABLE, "cannot check the publish lease of %s (Redis "
                   "unreachable) and publisher %s is not known here", name, c->pub.id);
    else if (a == LEASE_ANSWER_HOLDER)
        conn_error(c, SLP_E_CONFLICT, "lease of %s held by %s", name, holder);
    else
        conn_error(c, SLP_E_CONFLICT, "nobody holds the publish lease of %s", name);
}

/* The publisher id this relay knows for <name>: <current>, its stream's
 * (live, or lost within the grace), or else the last one seen publishing it
 * here within known-publisher-ttl. A lease answer <a> from Redis overrules
 * the latter first. */
static const char *known_for(struct relay *r, const char *name, const char *current,
                             enum lease_answer a, const char *holder, int64_t now)
{
    if (a != LEASE_ANSWER_ERROR)
        known_overruled(&r->known, name, a == LEASE_ANSWER_HOLDER ? holder : NULL);
    return current != NULL ? current : known_get(&r->known, name, now);
}

/* The lease answer is in (or Redis is down): accept or refuse. */
static void decide(struct conn *c, enum lease_answer a, const char *holder)
{
    struct relay *r = c->relay;
    char name[STREAM_NAME_MAX + 1];
    const struct chunk *pub = c->pub.publish;
    struct slp_frame f;
    if (c->state != CONN_DECIDING || slp_decode(pub->buf.data, pub->buf.len, &f) != SLP_OK)
        return;
    snprintf(name, sizeof(name), "%.*s", (int)f.publish.name.len, f.publish.name.p);
    int64_t now = clock_mono_ms();
    struct stream *s = stream_find(r, name, strlen(name));
    const char *current = s != NULL && s->state != STREAM_IDLE ? s->publisher_id : NULL;
    const char *known = known_for(r, name, current, a, holder, now);
    enum publish_verdict v = publish_decide(a, holder, c->pub.id, known);
    if (v != PUBLISH_ACCEPT) {
        refuse(c, v, a, holder, name);
        return;
    }
    if (r->stopping) {
        conn_error(c, SLP_E_GOING_AWAY, "relay shutting down");
        return;
    }
    if (a == LEASE_ANSWER_ERROR)
        log_warn("stream %s: Redis unreachable: accepting publisher %s, %s", name, c->pub.id,
                 current ? "which it had" : "the last one seen publishing it here");
    if (s == NULL && (s = stream_get(r, name, strlen(name))) == NULL) {
        conn_error(c, SLP_E_INTERNAL, "out of memory");
        return;
    }
    struct slp_frame accept = { .type = SLP_ACCEPT, .accept = { SLP_PUBLISH } };
    if (conn_send(c, &accept) == -1) {
        conn_error(c, SLP_E_INTERNAL, "out of memory");
        return;
    }
    slp_session_accepted(&c->sess);
    conn_set_state(c, CONN_PUBLISHING);
    c->deadline_ms = 0;
    if (known_seen(&r->known, name, c->pub.id, now) == -1)
        log_warn("stream %s: known publishers: out of memory", name);
    stream_set_publisher(s, c, publisher_change(current, c->pub.id));
}

static void on_lease(enum lease_answer a, const char *holder, void *arg)
{
    struct lease_check *k = arg;
    struct conn *c = k->c;
    free(k);
    if (c == NULL)
        return;                          /* it went while we asked */
    c->pub.check = NULL;
    decide(c, a, holder);
    conn_flush(c);
}

void publisher_request(struct conn *c, const struct slp_frame *f)
{
    struct relay *r = c->relay;
    if (r->stopping) {
        conn_error(c, SLP_E_GOING_AWAY, "relay shutting down");
        return;
    }
    size_t size = slp_encoded_size(f);
    c->pub.publish = size ? chunk_new(size) : NULL;
    struct lease_check *k = calloc(1, sizeof(*k));
    if (c->pub.publish == NULL || k == NULL) {
        free(k);
        conn_error(c, SLP_E_INTERNAL, "out of memory");
        return;
    }
    /* the codec is canonical: re-encoding gives the bytes that came */
    slp_encode(c->pub.publish->buf.data, size, f);
    c->pub.publish->type = SLP_PUBLISH;
    snprintf(c->pub.id, sizeof(c->pub.id), "%.*s", (int)f->publish.publisher.len,
             f->publish.publisher.p);
    char name[STREAM_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%.*s", (int)f->publish.name.len, f->publish.name.p);
    log_info("conn %llu: publisher %s (%s, %s) from %s asks to publish %s",
             (unsigned long long)c->id, c->pub.id, c->node, c->agent, c->peer, name);
    conn_set_state(c, CONN_DECIDING);
    k->c = c;
    c->pub.check = k;
    if (registry_lease_get(r->reg, name, on_lease, k) == -1) {
        c->pub.check = NULL;
        free(k);
        decide(c, LEASE_ANSWER_ERROR, NULL);
    }
}

void publisher_media(struct conn *c, struct chunk *m)
{
    c->pub.frames++;
    c->pub.bytes += m->buf.len;
    c->pub.keyframes += (m->flags & SLP_F_KEYFRAME) != 0;
    if (c->stream != NULL)
        stream_media(c->stream, m, clock_mono_ms());
}

void publisher_eos(struct conn *c, const struct slp_frame *f)
{
    struct stream *s = c->stream;
    const char *reason = slp_eos_name(f->eos.reason);
    char text[4 * SLP_TEXT_MAX + 8];
    log_escape(text, sizeof(text), f->eos.text.p, f->eos.text.len);
    log_info("conn %llu: publisher %s sent EOS %s: %s", (unsigned long long)c->id, c->pub.id,
             reason ? reason : "?", text);
    if (s != NULL) {
        known_forget(&c->relay->known, s->name);    /* it ended on purpose */
        stream_take_publisher(s);
        stream_end(s, f, reason ? reason : "ended");
    }
    conn_end(c, NULL, ERROR_DRAIN_MS);   /* nothing more to say: half-close */
}
