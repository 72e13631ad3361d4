/* Distinct viewers per stream: see viewers.h. */
#include "viewers.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/metrics.h"
#include "sluice/names.h"
#include "table.h"

struct slot {
    uint64_t id;        /* 0 = empty */
    int64_t seen;       /* ms */
};

struct stream_viewers {
    struct table_node node;
    struct metric_series *gauge;
    struct slot *slots;
    size_t cap;         /* a power of two */
    size_t used;
    char name[STREAM_NAME_MAX + 1];
};

struct viewers {
    struct table streams;
    int64_t window;
    size_t max_clients, max_streams, clients;
    uint64_t untracked;
    struct metric *family;
};

struct viewers *viewers_new(int64_t window_ms, size_t max_clients, size_t max_streams,
                            struct metric *family)
{
    struct viewers *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return NULL;
    table_init(&v->streams);
    v->window = window_ms;
    v->max_clients = max_clients;
    v->max_streams = max_streams;
    v->family = family;
    return v;
}

static void stream_free(struct viewers *v, struct stream_viewers *s)
{
    table_remove(&v->streams, &s->node);
    metric_remove(s->gauge);
    v->clients -= s->used;
    free(s->slots);
    free(s);
}

void viewers_free(struct viewers *v)
{
    if (v == NULL)
        return;
    struct table_iter it;
    table_iter_init(&v->streams, &it);
    for (struct table_node *n; (n = table_iter_next(&it)) != NULL;)
        stream_free(v, container_of(n, struct stream_viewers, node));
    table_release(&v->streams);
    free(v);
}

static struct stream_viewers *find(const struct viewers *v, const char *stream)
{
    struct table_node *n = table_find(&v->streams, stream, strlen(stream));
    return n ? container_of(n, struct stream_viewers, node) : NULL;
}

static struct stream_viewers *stream_new(struct viewers *v, const char *stream)
{
    size_t len = strlen(stream);
    if (v->streams.count >= v->max_streams || len > STREAM_NAME_MAX)
        return NULL;
    struct stream_viewers *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->cap = 8;
    s->slots = calloc(s->cap, sizeof(*s->slots));
    memcpy(s->name, stream, len + 1);
    if (s->slots == NULL || table_insert(&v->streams, &s->node, s->name, len) == -1) {
        free(s->slots);
        free(s);
        return NULL;
    }
    if (v->family)
        s->gauge = metric_at(v->family, s->name);
    return s;
}

/* The slot holding <id>, or the empty slot where it would go. */
static struct slot *probe(struct slot *slots, size_t cap, uint64_t id)
{
    size_t i = (size_t)id & (cap - 1);
    while (slots[i].id != 0 && slots[i].id != id)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

/* Rebuilds the table of <s> with <cap> slots, keeping clients seen after
 * <since>. Returns 0 or -1 (then unchanged). */
static int rebuild(struct viewers *v, struct stream_viewers *s, size_t cap, int64_t since)
{
    struct slot *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return -1;
    size_t used = 0;
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i].id != 0 && s->slots[i].seen > since) {
            *probe(slots, cap, s->slots[i].id) = s->slots[i];
            used++;
        }
    }
    free(s->slots);
    v->clients -= s->used - used;
    s->slots = slots;
    s->cap = cap;
    s->used = used;
    return 0;
}

void viewers_seen(struct viewers *v, const char *stream, const void *client, size_t len,
                  int64_t now)
{
    struct stream_viewers *s = find(v, stream);
    if (s == NULL && (s = stream_new(v, stream)) == NULL) {
        v->untracked++;
        return;
    }
    uint64_t id = table_hash(client, len);
    id = id ? id : 1;
    struct slot *slot = probe(s->slots, s->cap, id);
    if (slot->id == id) {
        slot->seen = now;
        return;
    }
    if (v->clients >= v->max_clients) {
        v->untracked++;
        return;
    }
    if ((s->used + 1) * 2 > s->cap) {   /* keep the load at most one half */
        if (rebuild(v, s, s->cap * 2, INT64_MIN) == -1) {
            v->untracked++;
            return;
        }
        slot = probe(s->slots, s->cap, id);
    }
    slot->id = id;
    slot->seen = now;
    s->used++;
    v->clients++;
}

static size_t count_since(const struct stream_viewers *s, int64_t since)
{
    size_t n = 0;
    for (size_t i = 0; i < s->cap; i++)
        n += s->slots[i].id != 0 && s->slots[i].seen > since;
    return n;
}

size_t viewers_count(struct viewers *v, const char *stream, int64_t now)
{
    struct stream_viewers *s = find(v, stream);
    return s ? count_since(s, now - v->window) : 0;
}

void viewers_sweep(struct viewers *v, int64_t now)
{
    int64_t since = now - v->window;
    struct table_iter it;
    table_iter_init(&v->streams, &it);
    for (struct table_node *n; (n = table_iter_next(&it)) != NULL;) {
        struct stream_viewers *s = container_of(n, struct stream_viewers, node);
        size_t live = count_since(s, since);
        if (live == 0) {
            stream_free(v, s);
            continue;
        }
        if (live < s->used) {
            size_t cap = 8;
            while (cap < live * 2)
                cap *= 2;
            rebuild(v, s, cap, since);   /* on failure the old entries stay */
        }
        metric_set(s->gauge, (double)live);
    }
}

size_t viewers_streams(const struct viewers *v)
{
    return v->streams.count;
}

size_t viewers_clients(const struct viewers *v)
{
    return v->clients;
}

uint64_t viewers_untracked(const struct viewers *v)
{
    return v->untracked;
}
