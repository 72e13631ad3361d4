/* libFuzzer: the in-memory authtable under any sequence of changes and
 * snapshots. The input is JSON lines: an object is an event as on
 * sluice:events ({"type", "stream", "version", "auth"}), an array a snapshot
 * ([version, [entries]]). Whatever comes, the table's two indexes must agree,
 * and a lookup must find only entries that passed the checks. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../../../services/api/authcache.h"
#include "sluice/json.h"

static void step(struct authcache *t, const json_t *v)
{
    const char *type, *stream;
    int64_t version;
    if (json_is_array(v)) {
        json_t *ver = json_array_get(v, 0);
        if (json_is_integer(ver))
            authcache_load(t, json_integer_value(ver), json_array_get(v, 1));
        return;
    }
    if (json_get_str(v, "type", &type) != 0 || json_get_str(v, "stream", &stream) != 0 ||
        json_get_int(v, "version", &version) != 0)
        return;
    bool deleted = strcmp(type, "stream.deleted") == 0;
    authcache_apply(t, stream, version, deleted ? NULL : json_object_get(v, "auth"));
    const json_t *e = authcache_by_name(t, stream);
    if (e && !authcache_entry_valid(e))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct authcache *t = authcache_new();
    const uint8_t *p = data, *end = data + size;
    while (t && p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_t *v = json_parse(p, len, NULL, 0);
        if (v) {
            step(t, v);
            json_decref(v);
        }
        if (!authcache_consistent(t))
            __builtin_trap();
        p += len + 1;
    }
    authcache_free(t);
    return 0;
}
