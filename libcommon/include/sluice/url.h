/* The grammar of an origin URL, as daemons advertise it to each other
 * (origin.json, sluice:origin:<name>, sluice:vod:<id>) and as httpc_new()
 * takes it: "http://" host [":" port], where host is a DNS name, an IPv4
 * address or a bracketed IPv6 address, and nothing else (no path, query,
 * user info or spaces). Checked by whoever writes one and whoever reads one.
 */
#ifndef SLUICE_URL_H
#define SLUICE_URL_H

#include <stdbool.h>
#include <stddef.h>

#define ORIGIN_URL_MAX 280

/* True if the <len> bytes at <s> are an origin URL. One trailing '/' is
 * tolerated (see origin_url_normalize). */
bool origin_url_valid(const char *s, size_t len);

/* Copies the origin URL at <s> (<len> bytes) into <dst> (<dstlen> bytes),
 * without its trailing '/'. Returns 0, or -1 when it is not valid or does not
 * fit. */
int origin_url_normalize(const char *s, size_t len, char *dst, size_t dstlen);

#endif
