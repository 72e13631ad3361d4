/* The shape of the paths the edge serves, checked before anything else:
 *
 *   /live/<stream>/<file>    <stream>: the stream-name grammar (names.h)
 *   /vod/<recording>/<file>  <recording>: the same grammar
 *
 * <file> is 1 to FILE_NAME_MAX characters of [A-Za-z0-9_.-], starting with a
 * letter, digit, '_' or '-' (never '.': hls writes its temporary files with a
 * leading dot), without "..", and ending in one of the extensions below.
 * Anything else is refused, so that no path the edge forwards to an origin
 * can name anything but a playlist or a segment of one stream.
 *
 * Pure functions: no I/O, no allocation.
 */
#ifndef SLUICE_EDGE_REQPATH_H
#define SLUICE_EDGE_REQPATH_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/names.h"

#define FILE_NAME_MAX 128
/* "/live/" + stream + "/" + file */
#define OBJ_KEY_MAX (6 + STREAM_NAME_MAX + 1 + FILE_NAME_MAX)

enum edge_ns { NS_LIVE, NS_VOD };

enum obj_type {
    OBJ_PLAYLIST,   /* .m3u8: short-lived */
    OBJ_SEGMENT,    /* .ts, .m4s, .mp4 (fMP4 init): immutable */
};

struct objpath {
    enum edge_ns ns;
    enum obj_type type;
    const char *content_type;
    char name[STREAM_NAME_MAX + 1];
    char file[FILE_NAME_MAX + 1];
    char key[OBJ_KEY_MAX + 1];   /* the canonical path, also the cache key */
    size_t keylen;
};

/* "live" or "vod". */
const char *edge_ns_name(enum edge_ns ns);

/* True if the <len> bytes at <s> are an acceptable file name; sets *<type> and
 * *<content_type> (either may be NULL). */
bool file_name_valid(const char *s, size_t len, enum obj_type *type,
                     const char **content_type);

/* Parses <rest>, the part after "/live/" or "/vod/" ("<name>/<file>", already
 * percent-decoded segment by segment), into <out>. Returns 0, or -1 with a
 * static, printable reason in *<why>. */
int objpath_parse(enum edge_ns ns, const char *rest, size_t len, struct objpath *out,
                  const char **why);

#endif
