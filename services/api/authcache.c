/* The authtable in memory: see authcache.h.
 *
 * Two jansson objects (hash tables, seeded at random by jansson, so names
 * chosen to collide do not degrade them): by_name maps a stream name to its
 * entry, or to a tombstone {"version": v, "deleted": true}; by_key maps a key
 * hash to the same entry object. */
#include "authcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/json.h"
#include "sluice/names.h"

struct authcache {
    json_t *by_name;
    json_t *by_key;
    int64_t version;     /* of the last snapshot */
    size_t live;         /* entries that are not tombstones */
};

struct authcache *authcache_new(void)
{
    struct authcache *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->by_name = json_object();
    t->by_key = json_object();
    if (t->by_name == NULL || t->by_key == NULL) {
        authcache_free(t);
        return NULL;
    }
    return t;
}

void authcache_free(struct authcache *t)
{
    if (t == NULL)
        return;
    json_decref(t->by_name);
    json_decref(t->by_key);
    free(t);
}

static bool is_hex64(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return false;
    }
    return n == 64;
}

bool authcache_entry_valid(const json_t *e)
{
    const char *name, *key;
    int64_t version;
    bool disabled;
    const json_t *pass = json_object_get(e, "passphrase");
    return json_is_object(e) && json_get_str(e, "name", &name) == 0 &&
           stream_name_valid(name) && json_get_str(e, "key_sha256", &key) == 0 &&
           is_hex64(key) && json_get_int(e, "version", &version) == 0 &&
           json_get_bool(e, "disabled", &disabled) == 0 &&
           (pass == NULL || json_is_null(pass) || json_is_string(pass));
}

static int64_t version_of(const json_t *e)
{
    return json_integer_value(json_object_get(e, "version"));
}

static bool is_tombstone(const json_t *e)
{
    return json_object_get(e, "deleted") != NULL;
}

static const char *key_of(const json_t *e)
{
    return json_string_value(json_object_get(e, "key_sha256"));
}

/* Two streams cannot hold one key (the database forbids it, and keys are
 * never reused), so a claim to <key> by another stream than <name> is stale:
 * the stream holding it is turned into a tombstone of its own version, and
 * so refused, until a newer change or snapshot says what it holds. Returns 0
 * or -1. */
static int drop_other_holder(struct authcache *t, const char *name, const char *key)
{
    json_t *other = json_object_get(t->by_key, key);
    char other_name[80];
    if (other == NULL || strcmp(json_string_value(json_object_get(other, "name")), name) == 0)
        return 0;
    snprintf(other_name, sizeof(other_name), "%s",
             json_string_value(json_object_get(other, "name")));
    json_t *tomb = json_pack("{s:I, s:b}", "version", (json_int_t)version_of(other),
                             "deleted", 1);
    if (tomb == NULL)
        return -1;
    json_object_del(t->by_key, key);
    t->live--;
    return json_object_set_new(t->by_name, other_name, tomb);
}

/* Puts <value> (a new reference, stolen) for <name>, keeping by_key and the
 * count in step. Returns 0 or -1 (nothing changed). */
static int put(struct authcache *t, const char *name, json_t *value)
{
    if (value == NULL)
        return -1;
    const char *newkey = is_tombstone(value) ? NULL : key_of(value);
    if (newkey && drop_other_holder(t, name, newkey) == -1) {
        json_decref(value);
        return -1;
    }
    json_t *old = json_object_get(t->by_name, name);
    if (newkey && json_object_set(t->by_key, newkey, value) == -1) {
        json_decref(value);
        return -1;
    }
    if (old && !is_tombstone(old)) {
        const char *oldkey = key_of(old);
        if (!newkey || strcmp(oldkey, newkey) != 0)
            json_object_del(t->by_key, oldkey);
        t->live--;
    }
    if (!is_tombstone(value))
        t->live++;
    return json_object_set_new(t->by_name, name, value);
}

int authcache_apply(struct authcache *t, const char *name, int64_t version,
                    const json_t *entry)
{
    if (!stream_name_valid(name) || (entry && (!authcache_entry_valid(entry) ||
                                               version_of(entry) != version ||
                                               strcmp(json_string_value(json_object_get(
                                                          entry, "name")), name) != 0)))
        return -1;
    const json_t *held = json_object_get(t->by_name, name);
    if (version <= (held ? version_of(held) : t->version))
        return 0;
    json_t *value = entry ? json_deep_copy(entry)
                          : json_pack("{s:I, s:b}", "version", (json_int_t)version,
                                      "deleted", 1);
    return put(t, name, value) == 0 ? 1 : -1;
}

int authcache_load(struct authcache *t, int64_t version, const json_t *entries)
{
    struct authcache *n = authcache_new();
    size_t i;
    const json_t *e;
    const char *name;
    json_t *held;
    if (n == NULL || !json_is_array(entries))
        goto out_free;
    n->version = version;
    json_array_foreach(entries, i, e) {
        if (!authcache_entry_valid(e) || version_of(e) > version)
            goto out_free;
        if (put(n, json_string_value(json_object_get(e, "name")), json_deep_copy(e)) == -1)
            goto out_free;
    }
    /* what arrived while the snapshot was read, and is newer than it */
    json_object_foreach(t->by_name, name, held) {
        if (version_of(held) > version && put(n, name, json_incref(held)) == -1)
            goto out_free;
    }
    json_decref(t->by_name);
    json_decref(t->by_key);
    *t = *n;
    free(n);
    return 0;
out_free:
    authcache_free(n);
    return -1;
}

const json_t *authcache_by_name(const struct authcache *t, const char *name)
{
    const json_t *e = json_object_get(t->by_name, name);
    return e && !is_tombstone(e) ? e : NULL;
}

const json_t *authcache_by_key(const struct authcache *t, const char *key_sha256)
{
    return json_object_get(t->by_key, key_sha256);
}

size_t authcache_size(const struct authcache *t)
{
    return t->live;
}

int64_t authcache_version(const struct authcache *t)
{
    return t->version;
}

bool authcache_consistent(const struct authcache *t)
{
    const char *name, *key;
    json_t *e;
    size_t live = 0;
    json_object_foreach(t->by_name, name, e) {
        if (is_tombstone(e))
            continue;
        live++;
        if (json_object_get(t->by_key, key_of(e)) != e ||
            strcmp(json_string_value(json_object_get(e, "name")), name) != 0)
            return false;
    }
    json_object_foreach(t->by_key, key, e) {
        const char *owner = json_string_value(json_object_get(e, "name"));
        if (owner == NULL || json_object_get(t->by_name, owner) != e ||
            strcmp(key_of(e), key) != 0)
            return false;
    }
    return live == t->live && json_object_size(t->by_key) == live;
}
