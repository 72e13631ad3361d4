/* A chained hash table with intrusive nodes and string keys, hashed with
 * SipHash-1-3 under a per-process random key, so that peers who choose the
 * keys (request paths, stream names) cannot make chains long on purpose.
 *
 *   struct thing { struct table_node node; char key[32]; ... };
 *   table_insert(&t, &thing->node, thing->key, strlen(thing->key));
 *   struct table_node *n = table_find(&t, "demo", 4);
 *   struct thing *x = n ? container_of(n, struct thing, node) : NULL;
 *
 * The table never owns nodes or keys: a node's key must stay valid and
 * unchanged while the node is in the table. Not thread-safe.
 */
#ifndef SLUICE_EDGE_TABLE_H
#define SLUICE_EDGE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct table_node {
    struct table_node *next;
    const char *key;
    size_t keylen;
    uint64_t hash;
};

struct table {
    struct table_node **buckets;
    size_t nbuckets;      /* a power of two, or 0 before the first insert */
    size_t count;
};

/* 64-bit keyed hash of <len> bytes (the table's hash). */
uint64_t table_hash(const void *data, size_t len);

/* An empty table; allocates nothing until the first insert. */
void table_init(struct table *t);

/* Frees the bucket array (not the nodes) and leaves the table empty. */
void table_release(struct table *t);

/* The node whose key is the <len> bytes at <key>, or NULL. */
struct table_node *table_find(const struct table *t, const char *key, size_t len);

/* Inserts <n> under <key> (not already present). Returns 0, or -1 on
 * allocation failure (the table is then unchanged). */
int table_insert(struct table *t, struct table_node *n, const char *key, size_t len);

/* Removes <n>, which must be in <t>. */
void table_remove(struct table *t, struct table_node *n);

/* Iteration that tolerates removing the current node:
 *   struct table_iter it; table_iter_init(&t, &it);
 *   for (struct table_node *n; (n = table_iter_next(&it)) != NULL; ) ... */
struct table_iter {
    const struct table *t;
    size_t bucket;
    struct table_node *next;
};
void table_iter_init(const struct table *t, struct table_iter *it);
struct table_node *table_iter_next(struct table_iter *it);

#endif
