/* The object cache: see cache.h. */
#include "cache.h"

#include <stdlib.h>
#include <string.h>

#include "body.h"

struct cache {
    struct table index;
    struct cache_entry *head, *tail;   /* LRU: head is the most recent */
    size_t bytes, capacity;
    uint64_t evictions, expirations;
};

struct cache *cache_new(size_t capacity)
{
    struct cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    table_init(&c->index);
    c->capacity = capacity;
    return c;
}

static void lru_unlink(struct cache *c, struct cache_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(struct cache *c, struct cache_entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    else
        c->tail = e;
    c->head = e;
}

static void entry_drop(struct cache *c, struct cache_entry *e)
{
    table_remove(&c->index, &e->node);
    lru_unlink(c, e);
    c->bytes -= e->charge;
    body_unref(e->body);
    free(e);
}

void cache_free(struct cache *c)
{
    if (c == NULL)
        return;
    while (c->head)
        entry_drop(c, c->head);
    table_release(&c->index);
    free(c);
}

static struct cache_entry *find(const struct cache *c, const char *key, size_t len)
{
    struct table_node *n = table_find(&c->index, key, len);
    return n ? container_of(n, struct cache_entry, node) : NULL;
}

struct cache_entry *cache_get(struct cache *c, const char *key, size_t len, int64_t now)
{
    struct cache_entry *e = find(c, key, len);
    if (e == NULL)
        return NULL;
    if (now >= e->stale_until) {
        c->expirations++;
        entry_drop(c, e);
        return NULL;
    }
    if (c->head != e) {
        lru_unlink(c, e);
        lru_push(c, e);
    }
    return e;
}

void cache_remove(struct cache *c, const char *key, size_t len)
{
    struct cache_entry *e = find(c, key, len);
    if (e != NULL)
        entry_drop(c, e);
}

int cache_put(struct cache *c, const char *key, size_t len, struct body *b,
              int64_t fresh_until, int64_t stale_until, int64_t now)
{
    cache_remove(c, key, len);
    size_t charge = b->buf.len + len + CACHE_ENTRY_OVERHEAD;
    if (charge > c->capacity || b->buf.len > c->capacity)
        return -1;
    struct cache_entry *e = malloc(sizeof(*e) + len + 1);
    if (e == NULL)
        return -1;
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    e->keylen = len;
    if (table_insert(&c->index, &e->node, e->key, len) == -1) {
        free(e);
        return -1;
    }
    e->body = body_ref(b);
    e->fresh_until = fresh_until;
    e->stale_until = stale_until < fresh_until ? fresh_until : stale_until;
    e->stored_at = now;
    e->charge = charge;
    lru_push(c, e);
    c->bytes += charge;
    while (c->bytes > c->capacity && c->tail != e) {
        c->evictions++;
        entry_drop(c, c->tail);
    }
    return 0;
}

size_t cache_sweep(struct cache *c, int64_t now)
{
    size_t n = 0;
    struct cache_entry *e = c->head, *next;
    for (; e; e = next) {
        next = e->next;
        if (now >= e->stale_until) {
            entry_drop(c, e);
            n++;
        }
    }
    c->expirations += n;
    return n;
}

void cache_get_stats(const struct cache *c, struct cache_stats *out)
{
    out->bytes = c->bytes;
    out->capacity = c->capacity;
    out->entries = c->index.count;
    out->evictions = c->evictions;
    out->expirations = c->expirations;
}
