/* Response bodies: see body.h. */
#include "body.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

struct body *body_new(int status, size_t len)
{
    /* buf is the first member: the refbuf is the body */
    struct body *b = (struct body *)refbuf_new_embedded(sizeof(struct body), len);
    if (b == NULL)
        return NULL;
    b->status = status;
    b->etag[0] = '\0';
    b->last_modified[0] = '\0';
    return b;
}

struct body *body_from_evbuffer(int status, struct evbuffer *src)
{
    size_t len = src ? evbuffer_get_length(src) : 0;
    struct body *b = body_new(status, len);
    if (b == NULL)
        return NULL;
    if (len > 0 && evbuffer_copyout(src, b->buf.data, len) != (ev_ssize_t)len) {
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
    refbuf_ref(&b->buf);
    return b;
}

void body_unref(struct body *b)
{
    if (b != NULL)
        refbuf_unref(&b->buf);
}
