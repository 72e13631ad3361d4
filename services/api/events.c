/* sluice:events: see events.h. */
#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "call.h"
#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/redis.h"

/* The reply waiting for Redis to take the message. */
struct publish {
    struct call *c;
    int status;
    json_t *body;
    char type[32];
};

json_t *event_message(const char *type, const char *stream, int64_t version, json_t *auth)
{
    char at[32];
    clock_rfc3339(at, sizeof(at), clock_wall_us());
    return json_pack("{s:s, s:s, s:I, s:s, s:o}", "type", type, "stream", stream,
                     "version", (json_int_t)version, "at", at,
                     "auth", auth ? auth : json_null());
}

json_t *event_recording(const char *type, const char *id, const char *stream)
{
    char at[32];
    clock_rfc3339(at, sizeof(at), clock_wall_us());
    return json_pack("{s:s, s:s, s:s, s:s}", "type", type, "id", id, "stream", stream, "at",
                     at);
}

json_t *event_user(const char *type, int64_t id, const char *username)
{
    char at[32];
    clock_rfc3339(at, sizeof(at), clock_wall_us());
    return json_pack("{s:s, s:I, s:s, s:s}", "type", type, "id", (json_int_t)id,
                     "username", username, "at", at);
}

static void finish(struct publish *p, bool published)
{
    struct call *c = p->c;
    api_count(c->api, AM_EVENTS, published ? "published" : "failed");
    if (!published)
        log_warn("events: %s not published (Redis unavailable); subscribers will "
                 "catch up when they resubscribe", p->type);
    call_reply(c, p->status, p->body);
    free(p);
}

static void on_published(const struct redis_reply *reply, const char *err, void *arg)
{
    (void)reply;
    if (err != NULL)
        log_warn("events: PUBLISH failed: %s", err);
    finish(arg, err == NULL);
}

void event_publish_then_reply(struct call *c, json_t *msg, int status, json_t *body)
{
    struct publish *p = calloc(1, sizeof(*p));
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    if (p == NULL || text == NULL) {
        free(p);
        free(text);
        json_decref(msg);
        json_decref(body);
        call_error(c, 503, "unavailable", "out of memory");
        return;
    }
    p->c = c;
    p->status = status;
    p->body = body;
    const char *type = json_string_value(json_object_get(msg, "type"));
    snprintf(p->type, sizeof(p->type), "%s", type ? type : "?");
    json_decref(msg);
    int rc = redis_command(c->api->redis, on_published, p, "PUBLISH %s %b", EVENTS_CHANNEL,
                           text, strlen(text));
    free(text);
    if (rc == -1)
        finish(p, false);
}
