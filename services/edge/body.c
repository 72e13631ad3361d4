/* Reference-counted bodies: see body.h. */
#include "body.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

/* Process-wide, so that a body freed by a connection's buffer after
 * everything else is gone (at exit) touches nothing but these. */
static uint64_t live_count, live_bytes, sends;

struct body *body_new(int status, size_t len)
{
    if (len > SIZE_MAX - sizeof(struct body))
        return NULL;
    struct body *b = malloc(sizeof(*b) + len);
    if (b == NULL)
        return NULL;
    b->refs = 1;
    b->status = status;
    b->len = len;
    b->etag[0] = '\0';
    b->last_modified[0] = '\0';
    live_count++;
    live_bytes += len;
    return b;
}

struct body *body_from_evbuffer(int status, struct evbuffer *src)
{
    size_t len = src ? evbuffer_get_length(src) : 0;
    struct body *b = body_new(status, len);
    if (b == NULL)
        return NULL;
    if (len > 0 && evbuffer_copyout(src, b->data, len) != (ev_ssize_t)len) {
        body_unref(b);
        return NULL;
    }
    return b;
}

static bool printable(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    }
    return true;
}

static void set_tag(char *dst, const char *value)
{
    if (value != NULL && strlen(value) < BODY_TAG_MAX && printable(value))
        snprintf(dst, BODY_TAG_MAX, "%s", value);
}

void body_set_etag(struct body *b, const char *value)
{
    set_tag(b->etag, value);
}

void body_set_last_modified(struct body *b, const char *value)
{
    set_tag(b->last_modified, value);
}

struct body *body_ref(struct body *b)
{
    b->refs++;
    return b;
}

void body_unref(struct body *b)
{
    if (b == NULL || --b->refs > 0)
        return;
    live_count--;
    live_bytes -= b->len;
    free(b);
}

/* evbuffer cleanup: the reply has sent these bytes, or its connection is gone. */
static void send_done(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    sends--;
    body_unref(arg);
}

int body_add_to(struct body *b, struct evbuffer *out, size_t off, size_t len)
{
    if (off > b->len || len > b->len - off)
        return -1;
    if (len == 0)
        return 0;
    body_ref(b);
    sends++;
    if (evbuffer_add_reference(out, b->data + off, len, send_done, b) == -1) {
        sends--;
        body_unref(b);
        return -1;
    }
    return 0;
}

uint64_t body_live_count(void)
{
    return live_count;
}

uint64_t body_live_bytes(void)
{
    return live_bytes;
}

uint64_t body_sends_in_flight(void)
{
    return sends;
}
