/* origin.json, which hls writes at the top of its output directory (see
 * docs/architecture.md, "The origin directory"):
 *   {"url": "http://10.0.0.5:8080", "node": "hls-1", "updated_at": "..."}
 * Only "url" is required; unknown keys are ignored, so hls may add some.
 * A pure parser of the file's bytes. */
#ifndef SLUICE_DISCOVERY_ORIGINJSON_H
#define SLUICE_DISCOVERY_ORIGINJSON_H

#include <stddef.h>

#include "sluice/url.h"

#define ORIGIN_JSON_MAX 65536   /* larger files are refused unread */
#define ORIGIN_NODE_MAX 128

struct origin_info {
    char url[ORIGIN_URL_MAX + 1];    /* normalised, no trailing '/' */
    char node[ORIGIN_NODE_MAX + 1];  /* "" when absent */
};

/* Parses the <len> bytes at <buf> into <out>. Returns 0, or -1 with a
 * printable reason in <why> (<whylen> bytes). */
int origin_json_parse(const char *buf, size_t len, struct origin_info *out, char *why,
                      size_t whylen);

#endif
