/* Request path validation: see reqpath.h. */
#include "reqpath.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *ext;
    enum obj_type type;
    const char *content_type;
} extensions[] = {
    { ".m3u8", OBJ_PLAYLIST, "application/vnd.apple.mpegurl" },
    { ".ts", OBJ_SEGMENT, "video/mp2t" },
    { ".m4s", OBJ_SEGMENT, "video/iso.segment" },
    { ".mp4", OBJ_SEGMENT, "video/mp4" },
};

const char *edge_ns_name(enum edge_ns ns)
{
    return ns == NS_VOD ? "vod" : "live";
}

static bool file_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.';
}

bool file_name_valid(const char *s, size_t len, enum obj_type *type,
                     const char **content_type)
{
    if (s == NULL || len == 0 || len > FILE_NAME_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!file_char(s[i]) || (s[i] == '.' && i + 1 < len && s[i + 1] == '.'))
            return false;
    }
    for (size_t k = 0; k < sizeof(extensions) / sizeof(extensions[0]); k++) {
        size_t el = strlen(extensions[k].ext);
        if (len > el && memcmp(s + len - el, extensions[k].ext, el) == 0) {
            if (type)
                *type = extensions[k].type;
            if (content_type)
                *content_type = extensions[k].content_type;
            return true;
        }
    }
    return false;
}

int objpath_parse(enum edge_ns ns, const char *rest, size_t len, struct objpath *out,
                  const char **why)
{
    const char *slash = memchr(rest, '/', len);
    if (slash == NULL) {
        *why = "the path must be /<live|vod>/<name>/<file>";
        return -1;
    }
    size_t nlen = (size_t)(slash - rest), flen = len - nlen - 1;
    if (memchr(slash + 1, '/', flen) != NULL) {
        *why = "the path must be /<live|vod>/<name>/<file>";
        return -1;
    }
    if (!stream_name_validn(rest, nlen)) {
        *why = ns == NS_VOD ? "invalid recording id (want [A-Za-z0-9_-]{1,64})"
                            : "invalid stream name (want [A-Za-z0-9_-]{1,64})";
        return -1;
    }
    if (!file_name_valid(slash + 1, flen, &out->type, &out->content_type)) {
        *why = "invalid file name (want [A-Za-z0-9_-][A-Za-z0-9_.-]* ending in "
               ".m3u8, .ts, .m4s or .mp4)";
        return -1;
    }
    out->ns = ns;
    memcpy(out->name, rest, nlen);
    out->name[nlen] = '\0';
    memcpy(out->file, slash + 1, flen);
    out->file[flen] = '\0';
    int n = snprintf(out->key, sizeof(out->key), "/%s/%s/%s", edge_ns_name(ns), out->name,
                     out->file);
    out->keylen = (size_t)n;
    return 0;
}
