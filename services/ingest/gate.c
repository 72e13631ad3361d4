/* The gate: see gate.h. */
#include "gate.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct live {
    char name[STREAM_NAME_MAX + 1];
    unsigned count;
};

struct gate {
    struct gate_options o;
    pthread_mutex_t mu;          /* guards table and the live set */
    struct authtable *table;
    struct live *live;           /* open addressing, backward-shift deletion */
    size_t cap, n;
};

#define LIVE_MIN 64

struct gate *gate_new(const struct gate_options *o)
{
    struct gate *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->o = *o;
    g->cap = LIVE_MIN;
    g->live = calloc(g->cap, sizeof(*g->live));
    if (g->live == NULL) {
        free(g);
        return NULL;
    }
    pthread_mutex_init(&g->mu, NULL);
    return g;
}

void gate_free(struct gate *g)
{
    if (g == NULL)
        return;
    authtable_unref(g->table);
    pthread_mutex_destroy(&g->mu);
    free(g->live);
    free(g);
}

void gate_set_table(struct gate *g, struct authtable *t)
{
    pthread_mutex_lock(&g->mu);
    struct authtable *old = g->table;
    g->table = t;
    pthread_mutex_unlock(&g->mu);
    authtable_unref(old);        /* a reader may still hold it: freed at its unref */
}

const struct authtable *gate_table(const struct gate *g)
{
    return g->table;             /* only the loop writes it */
}

/* ---- the live set (callers hold the mutex) ------------------------------ */

static size_t home_of(const struct gate *g, const char *name)
{
    size_t h = 5381;
    for (; *name; name++)
        h = h * 33 + (unsigned char)*name;
    return h & (g->cap - 1);
}

static size_t slot_of(const struct gate *g, const char *name)
{
    size_t i = home_of(g, name);
    while (g->live[i].count != 0 && strcmp(g->live[i].name, name) != 0)
        i = (i + 1) & (g->cap - 1);
    return i;
}

static int grow(struct gate *g)
{
    struct live *old = g->live;
    size_t oldcap = g->cap;
    struct live *fresh = calloc(2 * oldcap, sizeof(*fresh));
    if (fresh == NULL)
        return -1;
    g->live = fresh;
    g->cap = 2 * oldcap;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].count != 0)
            g->live[slot_of(g, old[i].name)] = old[i];
    }
    free(old);
    return 0;
}

int gate_live_add(struct gate *g, const char *name)
{
    pthread_mutex_lock(&g->mu);
    int rc = 0;
    if (2 * (g->n + 1) > g->cap)
        rc = grow(g);
    if (rc == 0) {
        struct live *e = &g->live[slot_of(g, name)];
        if (e->count++ == 0) {
            snprintf(e->name, sizeof(e->name), "%s", name);
            g->n++;
        }
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

void gate_live_remove(struct gate *g, const char *name)
{
    pthread_mutex_lock(&g->mu);
    size_t mask = g->cap - 1, i = slot_of(g, name);
    if (g->live[i].count > 0 && --g->live[i].count == 0) {
        g->n--;
        for (size_t j = (i + 1) & mask; g->live[j].count != 0; j = (j + 1) & mask) {
            size_t home = home_of(g, g->live[j].name);
            if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
                g->live[i] = g->live[j];
                i = j;
            }
        }
        memset(&g->live[i], 0, sizeof(g->live[i]));
    }
    pthread_mutex_unlock(&g->mu);
}

bool gate_is_live(struct gate *g, const char *name)
{
    pthread_mutex_lock(&g->mu);
    bool live = g->live[slot_of(g, name)].count != 0;
    pthread_mutex_unlock(&g->mu);
    return live;
}

/* ---- deciding ----------------------------------------------------------- */

int gate_check(struct gate *g, const char *streamid, size_t len, struct gate_result *r)
{
    memset(r, 0, sizeof(*r));
    const char *why;
    if (streamid_parse(streamid, len, &r->sid, &why) == -1) {
        r->d.code = REJ_BAD_REQUEST;
        r->d.why = why;
        return r->d.code;
    }
    pthread_mutex_lock(&g->mu);
    struct authtable *t = authtable_ref(g->table);
    bool live = g->live[slot_of(g, r->sid.stream)].count != 0;
    pthread_mutex_unlock(&g->mu);
    if (authtable_decide(t, &r->sid, &r->d) == REJ_NONE) {
        if (r->sid.mode == STREAMID_REQUEST && !g->o.playback) {
            r->d.code = REJ_UNIMPLEMENTED;
            r->d.why = "watching over SRT (m=request) is turned off here (playback=false)";
        } else if (r->sid.mode == STREAMID_PUBLISH && live && !g->o.takeover) {
            r->d.code = REJ_CONFLICT;
            r->d.why = "the stream is live on this ingest and takeover is off";
        } else if (r->d.passphrase != NULL) {
            snprintf(r->passphrase, sizeof(r->passphrase), "%s", r->d.passphrase);
        }
    }
    r->d.passphrase = NULL;      /* it pointed into <t>, released now */
    authtable_unref(t);
    return r->d.code;
}

void gate_describe(const char *streamid, size_t len, const struct gate_result *r, char *out,
                   size_t outlen)
{
    if (r->d.code == REJ_BAD_REQUEST) {
        char safe[SRTSRV_DETAIL_MAX];
        snprintf(out, outlen, "streamid \"%s\"", streamid_redact(streamid, len, safe,
                                                                   sizeof(safe)));
        return;
    }
    enum cred_kind k = cred_kind(r->sid.cred, strlen(r->sid.cred));
    snprintf(out, outlen, "%s %s with %s%s%s", streamid_mode_name(r->sid.mode), r->sid.stream,
             k == CRED_KEY ? "a key" : k == CRED_SESSION ? "a session id" : "a malformed key",
             r->sid.user[0] ? " as u=" : "", r->sid.user);
}

void gate_srt(const char *streamid, const char *addr, struct srtsrv_verdict *v, void *arg)
{
    (void)addr;
    struct gate_result r;
    size_t len = strlen(streamid);
    v->code = gate_check(arg, streamid, len, &r);
    v->why = r.d.why;
    if (v->code != 0)
        gate_describe(streamid, len, &r, v->detail, sizeof(v->detail));
    snprintf(v->passphrase, sizeof(v->passphrase), "%s", r.passphrase);
}
