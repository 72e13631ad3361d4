/* libFuzzer harness: what the edge accepts as an object path (the part after
 * /live/ or /vod/, already percent-decoded by the HTTP helper). Whatever is
 * accepted must be safe to forward to an origin: one stream-name segment,
 * one file name, no dot segment, no hidden file, no separator elsewhere. */
#include <stdint.h>
#include <string.h>

#include "../../../../services/edge/reqpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct objpath *p, enum edge_ns ns)
{
    const char *prefix = ns == NS_VOD ? "/vod/" : "/live/";
    if (strncmp(p->key, prefix, strlen(prefix)) != 0 || strlen(p->key) != p->keylen ||
        p->keylen > OBJ_KEY_MAX || strstr(p->key, "..") != NULL ||
        strstr(p->key, "/.") != NULL || strstr(p->key, "//") != NULL ||
        !stream_name_valid(p->name) || p->file[0] == '.' || strchr(p->file, '/') != NULL ||
        p->content_type == NULL)
        __builtin_trap();
    /* exactly three separators: /ns/name/file */
    int slashes = 0;
    for (const char *c = p->key; *c; c++)
        slashes += *c == '/';
    if (slashes != 3)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct objpath p;
    const char *why;
    for (int ns = NS_LIVE; ns <= NS_VOD; ns++) {
        if (objpath_parse((enum edge_ns)ns, s, size, &p, &why) == 0)
            check(&p, (enum edge_ns)ns);
        else if (why == NULL)
            __builtin_trap();
    }
    enum obj_type type;
    const char *ct;
    if (file_name_valid(s, size, &type, &ct) && (memchr(s, '/', size) || s[0] == '.'))
        __builtin_trap();
    return 0;
}
