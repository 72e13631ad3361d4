/* libFuzzer: the relay's live stream records as the api reads them
 * (liverec.h), for GET /v1/live and the live state of GET /v1/streams. The
 * input is "<name>\n<value of sluice:stream:<name>>". Whatever the value: a
 * record is a JSON object that names <name>; the fields the API shows from it
 * are a valid RFC 3339 started_at or nothing, and short printable strings or
 * null. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/api/liverec.h"
#include "../../../../services/api/requests.h"
#include "sluice/json.h"

static void check_field(const json_t *v)
{
    const char *s = json_string_value(v);
    if (json_is_null(v))
        return;
    if (s == NULL || strlen(s) > LIVEREC_FIELD_MAX)
        __builtin_trap();
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            __builtin_trap();
    }
}

static void check_record(const json_t *rec, const char *name)
{
    const char *inner, *started = liverec_started_at(rec);
    if (!json_is_object(rec) || json_get_str(rec, "name", &inner) != 0 ||
        strcmp(inner, name) != 0)
        __builtin_trap();
    if (started && !rfc3339_valid(started))
        __builtin_trap();
    json_t *out = json_object();
    if (out == NULL || liverec_set_ops(out, rec) == -1) {
        json_decref(out);
        return;
    }
    if (json_object_size(out) != 6)
        __builtin_trap();
    const char *key;
    json_t *v;
    json_object_foreach(out, key, v)
        check_field(v);
    json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t nlen = nl ? (size_t)(nl - data) : size;
    if (nlen > STREAM_NAME_MAX)
        return 0;
    char name[STREAM_NAME_MAX + 1];
    memcpy(name, data, nlen);
    name[nlen] = '\0';
    const char *text = nl ? (const char *)nl + 1 : "";
    size_t len = nl ? size - nlen - 1 : 0;
    char err[80];
    json_t *rec = liverec_parse(name, text, len, err, sizeof(err));
    if (rec) {
        check_record(rec, name);
        json_decref(rec);
    } else if (memchr(err, '\0', sizeof(err)) == NULL) {
        __builtin_trap();
    }
    return 0;
}
