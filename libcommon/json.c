/* JSON helpers: see json.h. */
#include "sluice/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "sluice/log.h"

json_t *json_parse(const void *buf, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (v == NULL && err != NULL) {
        char text[sizeof(je.text) + 8];
        log_escape(text, sizeof(text), je.text, strnlen(je.text, sizeof(je.text)));
        snprintf(err, errlen, "%s at line %d column %d", text, je.line, je.column);
    }
    return v;
}

json_t *json_parse_evbuffer(struct evbuffer *buf, char *err, size_t errlen)
{
    size_t len = evbuffer_get_length(buf);
    const unsigned char *p = evbuffer_pullup(buf, -1);
    if (p == NULL && len > 0) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return json_parse(p ? (const void *)p : "", len, err, errlen);
}

static int add_cb(const char *chunk, size_t size, void *data)
{
    return evbuffer_add(data, chunk, size);
}

int json_to_evbuffer(const json_t *v, struct evbuffer *out)
{
    return json_dump_callback(v, add_cb, out, JSON_COMPACT | JSON_ENCODE_ANY);
}

int json_get_str(const json_t *obj, const char *key, const char **out)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 1;
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

int json_get_int(const json_t *obj, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 1;
    if (!json_is_integer(v))
        return -1;
    *out = json_integer_value(v);
    return 0;
}

int json_get_bool(const json_t *obj, const char *key, bool *out)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 1;
    if (!json_is_boolean(v))
        return -1;
    *out = json_is_true(v);
    return 0;
}

bool json_keys_only(const json_t *obj, const char *const *allowed, const char **bad)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            *bad = key;
            return false;
        }
    }
    return true;
}
