/* Known publishers: see known.h. */
#include "known.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KNOWN_CAP_MIN 16

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;          /* FNV-1a */
    for (; *s != '\0'; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

void known_init(struct known *k, size_t max, int64_t ttl_ms)
{
    *k = (struct known){ .max = max, .ttl_ms = ttl_ms };
}

void known_fini(struct known *k)
{
    free(k->v);
    k->v = NULL;
    k->n = k->cap = 0;
}

/* The entry of <name>, or NULL. */
static struct known_publisher *find(const struct known *k, const char *name)
{
    uint32_t h = hash(name);
    for (size_t i = 0; i < k->n; i++) {
        if (k->v[i].hash == h && strcmp(k->v[i].name, name) == 0)
            return &k->v[i];
    }
    return NULL;
}

/* Removes <e> (an entry of the table); the last entry takes its place. */
static void drop(struct known *k, struct known_publisher *e)
{
    *e = k->v[--k->n];
}

/* A free entry at the end of the array: grown if it can be, else made by
 * dropping the entry seen longest ago. NULL on allocation failure. */
static struct known_publisher *make_room(struct known *k)
{
    if (k->n >= k->max) {
        struct known_publisher *oldest = &k->v[0];
        for (size_t i = 1; i < k->n; i++) {
            if (k->v[i].seen_ms < oldest->seen_ms)
                oldest = &k->v[i];
        }
        drop(k, oldest);
    } else if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : KNOWN_CAP_MIN;
        if (cap > k->max)
            cap = k->max;
        struct known_publisher *v = realloc(k->v, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        k->v = v;
        k->cap = cap;
    }
    return &k->v[k->n++];
}

int known_seen(struct known *k, const char *name, const char *id, int64_t now_ms)
{
    if (k->ttl_ms <= 0 || k->max == 0)
        return 0;
    struct known_publisher *e = find(k, name);
    if (e == NULL) {
        if ((e = make_room(k)) == NULL)
            return -1;
        e->hash = hash(name);
        snprintf(e->name, sizeof(e->name), "%s", name);
    }
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->seen_ms = now_ms;
    return 0;
}

const char *known_get(const struct known *k, const char *name, int64_t now_ms)
{
    const struct known_publisher *e = find(k, name);
    if (e == NULL || now_ms - e->seen_ms >= k->ttl_ms)
        return NULL;
    return e->id;
}

void known_overruled(struct known *k, const char *name, const char *holder)
{
    struct known_publisher *e = find(k, name);
    if (e != NULL && (holder == NULL || strcmp(e->id, holder) != 0))
        drop(k, e);
}

void known_forget(struct known *k, const char *name)
{
    struct known_publisher *e = find(k, name);
    if (e != NULL)
        drop(k, e);
}

void known_expire(struct known *k, int64_t now_ms)
{
    for (size_t i = 0; i < k->n;) {
        if (now_ms - k->v[i].seen_ms >= k->ttl_ms)
            drop(k, &k->v[i]);         /* the last one moves here: look again */
        else
            i++;
    }
}
