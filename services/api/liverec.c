/* Live stream records: see liverec.h. */
#include "liverec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "requests.h"
#include "sluice/json.h"
#include "sluice/log.h"

json_t *liverec_parse(const char *name, const char *text, size_t len, char *err,
                      size_t errlen)
{
    char why[80];
    const char *inner;
    json_t *rec = json_parse(text, len, why, sizeof(why));
    if (rec == NULL) {
        if (errlen > 0)
            snprintf(err, errlen, "%s", why);
        return NULL;
    }
    if (!json_is_object(rec) || json_get_str(rec, "name", &inner) != 0 ||
        strcmp(inner, name) != 0) {
        if (errlen > 0)
            snprintf(err, errlen, "not an object naming it");
        json_decref(rec);
        return NULL;
    }
    return rec;
}

json_t *liverec_from_reply(const struct redis_reply *mget, size_t i, const char *name)
{
    const struct redis_reply *v = redis_reply_at(mget, i);
    size_t len;
    char err[80];
    if (redis_reply_type(v) != REDIS_R_STRING)
        return NULL;   /* nil: not live, or expired since it was found */
    const char *text = redis_reply_str(v, &len);
    json_t *rec = text ? liverec_parse(name, text, len, err, sizeof(err)) : NULL;
    if (rec == NULL)
        log_warn("live: %s%s is not a stream record (%s); taken as not live",
                 LIVEREC_KEY_PREFIX, name, text ? err : "no value");
    return rec;
}

/* A string field of a record, if it is a short printable string. */
static json_t *field(const json_t *rec, const char *key)
{
    const char *v;
    if (json_get_str(rec, key, &v) != 0 || strlen(v) > LIVEREC_FIELD_MAX)
        return json_null();
    for (const char *p = v; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return json_null();
    }
    return json_string(v);
}

const char *liverec_started_at(const json_t *rec)
{
    const char *started;
    if (json_get_str(rec, "started_at", &started) != 0 || !rfc3339_valid(started))
        return NULL;
    return started;
}

int liverec_set_ops(json_t *out, const json_t *rec)
{
    static const char *const names[] = { "protocol", "client", "ingest", "relay", "relay_id",
                                         "publisher" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (json_object_set_new(out, names[i], field(rec, names[i])) == -1)
            return -1;
    }
    return 0;
}

int liverec_mget(struct redis *r, const char *const *names, size_t n, redis_reply_cb cb,
                 void *arg)
{
    const char **argv = malloc((n + 1) * sizeof(*argv));
    char (*keys)[LIVEREC_KEY_MAX] = malloc((n ? n : 1) * sizeof(*keys));
    int rc = -1;
    if (n > 0 && argv && keys) {
        argv[0] = "MGET";
        for (size_t i = 0; i < n; i++) {
            snprintf(keys[i], sizeof(keys[i]), LIVEREC_KEY_PREFIX "%s", names[i]);
            argv[i + 1] = keys[i];
        }
        rc = redis_commandv(r, cb, arg, (int)n + 1, argv, NULL);
    }
    free(argv);
    free(keys);
    return rc;
}
