/* Route records: the values of sluice:origin:<name> (written by discovery) and
 * sluice:vod:<id> (written by the recorder), JSON objects of which the edge
 * needs one field, "url" (see docs/redis.md). A pure parser of what Redis
 * returned. */
#ifndef SLUICE_EDGE_RECORD_H
#define SLUICE_EDGE_RECORD_H

#include <stddef.h>

#include "sluice/url.h"

#define ROUTE_RECORD_MAX 4096   /* longer values are refused unread */

/* Parses the <len> bytes at <buf> and copies its normalised "url" into <url>
 * (ORIGIN_URL_MAX + 1 bytes). Other fields are ignored. Returns 0, or -1 with
 * a printable reason in <why> (<whylen> bytes). */
int route_record_parse(const char *buf, size_t len, char *url, char *why, size_t whylen);

#endif
