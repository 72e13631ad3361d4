/* The socket map of the SRT thread: SRTSOCKET -> connection, open addressing
 * with linear probing. See srtsrv_int.h. */
#include "srtsrv_int.h"

#include <stdlib.h>

static size_t map_slot(const struct sockmap *m, SRTSOCKET k)
{
    size_t i = ((uint32_t)k * 2654435761u) & (m->cap - 1);
    while (m->keys[i] != SRT_INVALID_SOCK && m->keys[i] != k)
        i = (i + 1) & (m->cap - 1);
    return i;
}

int srtsrv_map_init(struct sockmap *m, unsigned max)
{
    m->cap = 16;
    while (m->cap < 2 * (size_t)max + 2)
        m->cap *= 2;
    m->keys = malloc(m->cap * sizeof(*m->keys));
    m->vals = calloc(m->cap, sizeof(*m->vals));
    if (m->keys == NULL || m->vals == NULL)
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        m->keys[i] = SRT_INVALID_SOCK;
    return 0;
}

struct srtsrv_conn *srtsrv_map_get(const struct sockmap *m, SRTSOCKET k)
{
    size_t i = map_slot(m, k);
    return m->keys[i] == k ? m->vals[i] : NULL;
}

void srtsrv_map_put(struct sockmap *m, SRTSOCKET k, struct srtsrv_conn *c)
{
    size_t i = map_slot(m, k);
    m->n += m->keys[i] != k;
    m->keys[i] = k;
    m->vals[i] = c;
}

/* Linear probing deletion: shifts the following run back into the hole. */
void srtsrv_map_del(struct sockmap *m, SRTSOCKET k)
{
    size_t mask = m->cap - 1, i = map_slot(m, k);
    if (m->keys[i] != k)
        return;
    m->n--;
    for (size_t j = (i + 1) & mask; m->keys[j] != SRT_INVALID_SOCK; j = (j + 1) & mask) {
        size_t home = ((uint32_t)m->keys[j] * 2654435761u) & mask;
        /* move j into i if its home is not in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->keys[i] = SRT_INVALID_SOCK;
    m->vals[i] = NULL;
}
