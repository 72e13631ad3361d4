/* Login throttling: see throttle.h. A chained hash table of small entries,
 * each with the times of its recent failures in a ring. */
#include "throttle.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

struct entry {
    char key[THROTTLE_KEY_MAX];
    int64_t fail_ms[THROTTLE_FAILURES_MAX];   /* ring of the last failures */
    unsigned nfail, head;                    /* count kept, next slot */
    unsigned inflight;
    int64_t locked_until_ms;
    struct entry *next;
};

struct throttle {
    struct throttle_options o;
    struct entry **bucket;
    size_t nbuckets, size;
};

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

struct throttle *throttle_new(const struct throttle_options *o)
{
    struct throttle *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->o = *o;
    if (t->o.max_failures < 1)
        t->o.max_failures = 1;
    if (t->o.max_failures > THROTTLE_FAILURES_MAX)
        t->o.max_failures = THROTTLE_FAILURES_MAX;
    t->nbuckets = o->max_entries < 8 ? 16 : o->max_entries * 2;
    t->bucket = calloc(t->nbuckets, sizeof(*t->bucket));
    if (t->bucket == NULL) {
        free(t);
        return NULL;
    }
    return t;
}

void throttle_free(struct throttle *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (struct entry *e = t->bucket[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(t->bucket);
    free(t);
}

size_t throttle_size(const struct throttle *t)
{
    return t->size;
}

/* Failures of <e> within the window ending at <now_ms>. */
static unsigned recent_failures(const struct throttle *t, const struct entry *e,
                                int64_t now_ms)
{
    unsigned n = 0;
    for (unsigned i = 0; i < e->nfail; i++) {
        if (now_ms - e->fail_ms[i] < t->o.window_ms)
            n++;
    }
    return n;
}

static int64_t last_failure(const struct entry *e)
{
    int64_t last = INT64_MIN;
    for (unsigned i = 0; i < e->nfail; i++)
        last = e->fail_ms[i] > last ? e->fail_ms[i] : last;
    return last;
}

/* Nothing to remember: no attempt in flight, no lock, no recent failure. */
static bool stale(const struct throttle *t, const struct entry *e, int64_t now_ms)
{
    return e->inflight == 0 && e->locked_until_ms <= now_ms &&
           recent_failures(t, e, now_ms) == 0;
}

static void unlink_entry(struct throttle *t, struct entry **link)
{
    struct entry *e = *link;
    *link = e->next;
    free(e);
    t->size--;
}

/* Makes room for one entry. Returns false if none can be freed. */
static bool make_room(struct throttle *t, int64_t now_ms)
{
    struct entry **oldest = NULL;
    int64_t oldest_ms = INT64_MAX;
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (struct entry **link = &t->bucket[i]; *link;) {
            struct entry *e = *link;
            if (stale(t, e, now_ms)) {
                unlink_entry(t, link);
                oldest = NULL;   /* it may point into the freed entry; and
                                    there is room now anyway */
                continue;
            }
            if (e->inflight == 0 && e->locked_until_ms <= now_ms &&
                last_failure(e) < oldest_ms) {
                oldest_ms = last_failure(e);
                oldest = link;
            }
            link = &e->next;
        }
    }
    if (t->size < t->o.max_entries)
        return true;
    if (oldest == NULL)
        return false;
    unlink_entry(t, oldest);
    return true;
}

/* The entry for <key>, created when <create>; NULL if absent or no room. */
static struct entry *lookup(struct throttle *t, const char *key, int64_t now_ms,
                            bool create)
{
    size_t b = hash_key(key) % t->nbuckets;
    for (struct entry *e = t->bucket[b]; e; e = e->next) {
        if (strcmp(e->key, key) == 0)
            return e;
    }
    if (!create || (t->size >= t->o.max_entries && !make_room(t, now_ms)))
        return NULL;
    struct entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->next = t->bucket[b];
    t->bucket[b] = e;
    t->size++;
    return e;
}

int64_t throttle_begin(struct throttle *t, const char *key, int64_t now_ms)
{
    struct entry *e = lookup(t, key, now_ms, true);
    if (e == NULL)
        return 0;   /* table full of locks: uncounted, see throttle.h */
    if (e->locked_until_ms > now_ms)
        return e->locked_until_ms - now_ms;
    if (recent_failures(t, e, now_ms) + e->inflight >= t->o.max_failures)
        return 1000;   /* attempts in flight would reach the limit: retry soon */
    e->inflight++;
    return 0;
}

bool throttle_end(struct throttle *t, const char *key, int64_t now_ms,
                  enum throttle_outcome outcome)
{
    bool locked = false;
    size_t b = hash_key(key) % t->nbuckets;
    struct entry **link = &t->bucket[b];
    while (*link && strcmp((*link)->key, key) != 0)
        link = &(*link)->next;
    struct entry *e = *link;
    if (e == NULL)
        return false;   /* was uncounted */
    if (e->inflight > 0)
        e->inflight--;
    if (outcome == THROTTLE_SUCCESS) {
        e->nfail = e->head = 0;
    } else if (outcome == THROTTLE_FAILURE) {
        e->fail_ms[e->head] = now_ms;
        e->head = (e->head + 1) % t->o.max_failures;
        if (e->nfail < t->o.max_failures)
            e->nfail++;
        if (recent_failures(t, e, now_ms) >= t->o.max_failures) {
            e->locked_until_ms = now_ms + t->o.lockout_ms;
            e->nfail = e->head = 0;   /* a fresh count once the lock ends */
            locked = true;
        }
    }
    if (stale(t, e, now_ms))
        unlink_entry(t, link);
    return locked;
}

int throttle_lock(struct throttle *t, const char *key, int64_t now_ms, int64_t until_ms)
{
    if (until_ms <= now_ms)
        return 0;
    struct entry *e = lookup(t, key, now_ms, true);
    if (e == NULL)
        return -1;
    if (e->locked_until_ms < until_ms) {
        e->locked_until_ms = until_ms;
        e->nfail = e->head = 0;
    }
    return 0;
}

bool throttle_addr_subject(const char *addr, char *out, size_t len)
{
    struct in_addr a4;
    struct in6_addr a6;
    char text[INET6_ADDRSTRLEN];
    const char *suffix = "";
    if (len == 0)
        return false;
    if (inet_pton(AF_INET, addr, &a4) == 1) {
        inet_ntop(AF_INET, &a4, text, sizeof(text));
    } else if (inet_pton(AF_INET6, addr, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            memcpy(&a4, &a6.s6_addr[12], sizeof(a4));
            inet_ntop(AF_INET, &a4, text, sizeof(text));
        } else {
            memset(&a6.s6_addr[8], 0, 8);   /* the interface identifier */
            inet_ntop(AF_INET6, &a6, text, sizeof(text));
            suffix = "/64";
        }
    } else {
        snprintf(out, len, "%s", addr);
        return false;
    }
    snprintf(out, len, "%s%s", text, suffix);
    return true;
}
