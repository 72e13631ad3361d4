/* The authorization table: see authtable.h. */
#include "authtable.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "sluice/json.h"

struct authtable {
    atomic_int refs;
    int64_t version;             /* of the last full load */
    int64_t max_version;         /* the newest entry or load */
    size_t n, live;              /* entries (tombstones included), live ones */
    struct auth_entry *entries;  /* n of them */
    uint32_t *slots;             /* open addressing: entry index + 1, 0 = empty */
    size_t nslots;               /* a power of two, at least 2n */
};

const char *reject_name(int code)
{
    switch (code) {
    case REJ_BAD_REQUEST: return "bad_request";
    case REJ_UNAUTHORIZED: return "unauthorized";
    case REJ_OVERLOAD: return "overload";
    case REJ_FORBIDDEN: return "forbidden";
    case REJ_NOT_FOUND: return "not_found";
    case REJ_CONFLICT: return "conflict";
    case REJ_INTERNAL: return "internal";
    case REJ_UNIMPLEMENTED: return "unimplemented";
    case REJ_DOWN: return "unavailable";
    }
    return NULL;
}

/* ---- building ----------------------------------------------------------- */

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;          /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* An empty table with room for <cap> entries; NULL if out of memory. */
static struct authtable *table_new(size_t cap)
{
    struct authtable *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    atomic_init(&t->refs, 1);
    t->nslots = 16;
    while (t->nslots < 2 * cap)
        t->nslots *= 2;
    t->entries = calloc(cap ? cap : 1, sizeof(*t->entries));
    t->slots = calloc(t->nslots, sizeof(*t->slots));
    if (t->entries == NULL || t->slots == NULL) {
        authtable_unref(t);
        return NULL;
    }
    return t;
}

static size_t slot_of(const struct authtable *t, const char *name)
{
    size_t mask = t->nslots - 1, i = name_hash(name) & mask;
    while (t->slots[i] != 0 && strcmp(t->entries[t->slots[i] - 1].name, name) != 0)
        i = (i + 1) & mask;
    return i;
}

const struct auth_entry *authtable_find(const struct authtable *t, const char *name)
{
    if (t == NULL)
        return NULL;
    uint32_t k = t->slots[slot_of(t, name)];
    return k ? &t->entries[k - 1] : NULL;
}

/* Adds <e>, or replaces the entry of the same name (the caller made room:
 * t->entries holds at least n + 1). */
static void put(struct authtable *t, const struct auth_entry *e)
{
    size_t i = slot_of(t, e->name);
    if (t->slots[i] != 0) {
        struct auth_entry *old = &t->entries[t->slots[i] - 1];
        t->live -= !old->deleted;
        *old = *e;
    } else {
        t->entries[t->n] = *e;
        t->slots[i] = (uint32_t)++t->n;
    }
    t->live += !e->deleted;
    if (e->version > t->max_version)
        t->max_version = e->version;
}

/* A copy of <src> with room for <extra> more entries. */
static struct authtable *table_copy(const struct authtable *src, size_t extra)
{
    struct authtable *t = table_new(src->n + extra);
    if (t == NULL)
        return NULL;
    t->version = src->version;
    t->max_version = src->max_version;
    for (size_t i = 0; i < src->n; i++)
        put(t, &src->entries[i]);
    return t;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;       /* upper case is not the contract's */
}

static bool parse_sha256(const char *hex, uint8_t out[32])
{
    if (strlen(hex) != 64)
        return false;
    for (int i = 0; i < 32; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool passphrase_ok(const char *p)
{
    size_t len = strlen(p);
    if (len < AUTH_PASSPHRASE_MIN || len > AUTH_PASSPHRASE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] > 0x7e)
            return false;
    }
    return true;
}

/* Reads one auth entry object (the authtable's and the events' format).
 * Fields added to the contract later are ignored. Returns 0, or -1 if it
 * breaks the contract. */
static int entry_from_json(const json_t *o, struct auth_entry *e)
{
    const char *name = NULL, *hash = NULL, *pass = NULL;
    memset(e, 0, sizeof(*e));
    if (!json_is_object(o) ||
        json_get_str(o, "name", &name) != 0 || !stream_name_valid(name) ||
        json_get_str(o, "key_sha256", &hash) != 0 || !parse_sha256(hash, e->key_sha256) ||
        json_get_bool(o, "disabled", &e->disabled) != 0 ||
        json_get_int(o, "version", &e->version) != 0 || e->version < 0)
        return -1;
    int rc = json_get_str(o, "passphrase", &pass);
    if (rc == -1 || (rc == 0 && !passphrase_ok(pass)))
        return -1;
    snprintf(e->name, sizeof(e->name), "%s", name);
    if (pass != NULL)
        snprintf(e->passphrase, sizeof(e->passphrase), "%s", pass);
    return 0;
}

struct authtable *authtable_from_json(const json_t *doc, size_t *skipped, char *err,
                                      size_t errlen)
{
    int64_t version;
    const json_t *streams = json_object_get(doc, "streams");
    *skipped = 0;
    if (!json_is_object(doc) || json_get_int(doc, "version", &version) != 0 || version < 0 ||
        !json_is_array(streams)) {
        snprintf(err, errlen, "not an authtable (want {\"version\": n, \"streams\": [...]})");
        return NULL;
    }
    struct authtable *t = table_new(json_array_size(streams));
    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->version = t->max_version = version;
    size_t i;
    const json_t *o;
    json_array_foreach(streams, i, o) {
        struct auth_entry e;
        if (entry_from_json(o, &e) == -1 || authtable_find(t, e.name) != NULL) {
            (*skipped)++;
            continue;
        }
        put(t, &e);
    }
    return t;
}

struct authtable *authtable_merge(struct authtable *loaded, const struct authtable *current)
{
    if (current == NULL || current->max_version <= loaded->version)
        return loaded;
    size_t newer = 0;
    for (size_t i = 0; i < current->n; i++)
        newer += current->entries[i].version > loaded->version;
    struct authtable *t = table_copy(loaded, newer);
    authtable_unref(loaded);
    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < current->n; i++) {
        if (current->entries[i].version > t->version)
            put(t, &current->entries[i]);
    }
    return t;
}

/* ---- events ------------------------------------------------------------- */

static const struct {
    const char *type;
    enum auth_event_kind kind;
} event_types[] = {
    { "stream.created", AEK_CREATED },
    { "stream.updated", AEK_UPDATED },
    { "key.rotated", AEK_KEY_ROTATED },
    { "stream.deleted", AEK_DELETED },
};

/* Reads the auth fields of <msg> into <ev> and <e>. Returns AE_APPLIED when
 * they are sound, AE_IGNORED or AE_BAD otherwise. */
static enum auth_event_result read_event(const json_t *msg, struct auth_event *ev,
                                         struct auth_entry *e)
{
    const char *type = NULL, *stream = NULL;
    if (!json_is_object(msg) || json_get_str(msg, "type", &type) != 0)
        return AE_BAD;
    size_t k = 0, nk = sizeof(event_types) / sizeof(event_types[0]);
    while (k < nk && strcmp(type, event_types[k].type) != 0)
        k++;
    if (k == nk)
        return AE_IGNORED;
    memset(ev, 0, sizeof(*ev));
    ev->kind = event_types[k].kind;
    const json_t *auth = json_object_get(msg, "auth");
    if (json_get_str(msg, "stream", &stream) != 0 || !stream_name_valid(stream) ||
        json_get_int(msg, "version", &ev->version) != 0 || ev->version < 0)
        return AE_BAD;
    snprintf(ev->stream, sizeof(ev->stream), "%s", stream);
    if (ev->kind == AEK_DELETED) {
        if (auth != NULL && !json_is_null(auth))
            return AE_BAD;
        memset(e, 0, sizeof(*e));
        snprintf(e->name, sizeof(e->name), "%s", stream);
        e->deleted = true;
        e->version = ev->version;
        return AE_APPLIED;
    }
    if (entry_from_json(auth, e) == -1 || strcmp(e->name, stream) != 0 ||
        e->version != ev->version)
        return AE_BAD;
    return AE_APPLIED;
}

enum auth_event_result authtable_apply_event(const struct authtable *cur, const json_t *msg,
                                             struct authtable **out, struct auth_event *ev)
{
    struct auth_entry e;
    enum auth_event_result r = read_event(msg, ev, &e);
    if (r != AE_APPLIED)
        return r;
    const struct auth_entry *held = authtable_find(cur, ev->stream);
    int64_t floor = held ? held->version : cur ? cur->version : -1;
    if (ev->version <= floor)
        return AE_STALE;
    ev->key_changed = held == NULL || held->deleted || e.deleted ||
                      CRYPTO_memcmp(held->key_sha256, e.key_sha256, 32) != 0;
    struct authtable *t = cur ? table_copy(cur, 1) : table_new(1);
    if (t == NULL)
        return AE_NOMEM;
    put(t, &e);
    *out = t;
    return AE_APPLIED;
}

const char *authtable_revokes(const struct auth_entry *then, const struct auth_entry *now)
{
    if (now == NULL || now->deleted)
        return "the stream was deleted";
    if (now->disabled)
        return "the stream was disabled";
    if (CRYPTO_memcmp(then->key_sha256, now->key_sha256, sizeof(now->key_sha256)) != 0)
        return "the stream key changed";
    if (strcmp(then->passphrase, now->passphrase) != 0)
        return "the stream's passphrase changed";
    return NULL;
}

/* ---- references and reading -------------------------------------------- */

struct authtable *authtable_ref(struct authtable *t)
{
    if (t != NULL)
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void authtable_unref(struct authtable *t)
{
    if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(t->entries);
    free(t->slots);
    free(t);
}

int64_t authtable_version(const struct authtable *t)
{
    return t ? t->version : -1;
}

int64_t authtable_max_version(const struct authtable *t)
{
    return t ? t->max_version : -1;
}

size_t authtable_size(const struct authtable *t)
{
    return t ? t->live : 0;
}

static int decided(struct auth_decision *d, int code, const char *why)
{
    d->code = code;
    d->why = why;
    return code;
}

int authtable_decide(const struct authtable *t, const struct streamid *sid,
                     struct auth_decision *d)
{
    memset(d, 0, sizeof(*d));
    if (t == NULL)
        return decided(d, REJ_DOWN, "no authorization table yet");
    const struct auth_entry *e = authtable_find(t, sid->stream);
    if (e == NULL || e->deleted)
        return decided(d, REJ_NOT_FOUND, "no such stream");
    size_t len = strlen(sid->cred);
    enum cred_kind kind = cred_kind(sid->cred, len);
    if (kind == CRED_INVALID)
        return decided(d, REJ_UNAUTHORIZED, "not a stream key or session id");
    if (kind == CRED_KEY) {
        uint8_t md[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)sid->cred, len, md);
        if (CRYPTO_memcmp(md, e->key_sha256, sizeof(md)) != 0)
            return decided(d, REJ_UNAUTHORIZED, "wrong key");
    }
    if (e->disabled)
        return decided(d, REJ_FORBIDDEN, "the stream is disabled");
    d->session = kind == CRED_SESSION;
    d->passphrase = e->passphrase[0] ? e->passphrase : NULL;
    return decided(d, REJ_NONE, d->session ? "session id, to be checked" : "key");
}
