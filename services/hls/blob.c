/* Reference-counted bytes: see blob.h. */
#include "blob.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

/* Process-wide, so that a blob released by a connection's buffer after
 * everything else is gone (at exit) touches nothing but these. */
static uint64_t live_count, live_bytes, sends;

struct blob *blob_wrap(uint8_t *data, size_t len, size_t cap)
{
    struct blob *b = malloc(sizeof(*b));
    if (b == NULL) {
        free(data);
        return NULL;
    }
    if (len > 0 && cap - len > len / 8) {
        uint8_t *p = realloc(data, len);
        if (p != NULL)
            data = p;
    }
    b->refs = 1;
    b->len = len;
    b->data = data;
    live_count++;
    live_bytes += len;
    return b;
}

struct blob *blob_copy(const void *src, size_t len)
{
    uint8_t *data = malloc(len ? len : 1);
    if (data == NULL)
        return NULL;
    memcpy(data, src, len);
    return blob_wrap(data, len, len);
}

struct blob *blob_ref(struct blob *b)
{
    b->refs++;
    return b;
}

void blob_unref(struct blob *b)
{
    if (b == NULL || --b->refs > 0)
        return;
    live_count--;
    live_bytes -= b->len;
    free(b->data);
    free(b);
}

/* evbuffer cleanup: the reply has sent these bytes, or its connection is gone. */
static void sent(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    sends--;
    blob_unref(arg);
}

int blob_add_to(struct blob *b, struct evbuffer *out)
{
    if (b->len == 0)
        return 0;
    blob_ref(b);
    sends++;
    if (evbuffer_add_reference(out, b->data, b->len, sent, b) == -1) {
        sends--;
        blob_unref(b);
        return -1;
    }
    return 0;
}

uint64_t blob_live_count(void)
{
    return live_count;
}

uint64_t blob_live_bytes(void)
{
    return live_bytes;
}

uint64_t blob_sends(void)
{
    return sends;
}
