/* Chained hash table with SipHash-1-3: see table.h. */
#include "table.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "sluice/clock.h"

/* ---- SipHash-1-3 (Aumasson and Bernstein), 64-bit output ----------------- */

static uint64_t sip_k0, sip_k1;
static bool sip_keyed;

static void sip_key(void)
{
    uint64_t k[2];
    if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k)) {
        /* no entropy yet (early boot): still unpredictable enough per process */
        k[0] = (uint64_t)clock_mono_us() * 0x9e3779b97f4a7c15ULL;
        k[1] = (uint64_t)clock_wall_us() ^ ((uint64_t)(uintptr_t)&k << 1);
    }
    sip_k0 = k[0];
    sip_k1 = k[1];
    sip_keyed = true;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                           \
    do {                                                                   \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);         \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                             \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                             \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);         \
    } while (0)

static uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;   /* little-endian hosts only; the hash need not be portable */
}

uint64_t table_hash(const void *data, size_t len)
{
    if (!sip_keyed)
        sip_key();
    const unsigned char *p = data;
    uint64_t v0 = 0x736f6d6570736575ULL ^ sip_k0, v1 = 0x646f72616e646f6dULL ^ sip_k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ sip_k0, v3 = 0x7465646279746573ULL ^ sip_k1;
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load64(p + i);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)p[whole + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the table ----------------------------------------------------------- */

void table_init(struct table *t)
{
    *t = (struct table){ 0 };
}

void table_release(struct table *t)
{
    free(t->buckets);
    table_init(t);
}

struct table_node *table_find(const struct table *t, const char *key, size_t len)
{
    if (t->count == 0)
        return NULL;
    uint64_t h = table_hash(key, len);
    for (struct table_node *n = t->buckets[h & (t->nbuckets - 1)]; n; n = n->next) {
        if (n->hash == h && n->keylen == len && memcmp(n->key, key, len) == 0)
            return n;
    }
    return NULL;
}

/* Doubles the bucket array (or makes the first one). Returns 0 or -1. */
static int grow(struct table *t)
{
    size_t nb = t->nbuckets ? t->nbuckets * 2 : 16;
    struct table_node **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return -1;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct table_node *n = t->buckets[i], *next;
        for (; n; n = next) {
            next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
    return 0;
}

int table_insert(struct table *t, struct table_node *n, const char *key, size_t len)
{
    if (t->count >= t->nbuckets && grow(t) == -1 && t->nbuckets == 0)
        return -1;   /* a full table that cannot grow still takes nodes */
    n->key = key;
    n->keylen = len;
    n->hash = table_hash(key, len);
    struct table_node **head = &t->buckets[n->hash & (t->nbuckets - 1)];
    n->next = *head;
    *head = n;
    t->count++;
    return 0;
}

void table_remove(struct table *t, struct table_node *n)
{
    struct table_node **pp = &t->buckets[n->hash & (t->nbuckets - 1)];
    while (*pp != n)
        pp = &(*pp)->next;
    *pp = n->next;
    n->next = NULL;
    t->count--;
}

void table_iter_init(const struct table *t, struct table_iter *it)
{
    it->t = t;
    it->bucket = 0;
    it->next = NULL;
}

struct table_node *table_iter_next(struct table_iter *it)
{
    while (it->next == NULL) {
        if (it->bucket >= it->t->nbuckets)
            return NULL;
        it->next = it->t->buckets[it->bucket++];
    }
    struct table_node *n = it->next;
    it->next = n->next;
    return n;
}
