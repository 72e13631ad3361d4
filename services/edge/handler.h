/* The edge's public HTTP routes:
 *   GET|HEAD|OPTIONS /live/<stream>/<file>
 *   GET|HEAD|OPTIONS /vod/<recording>/<file>
 * Cached bodies are sent by reference, with Content-Type by extension,
 * Cache-Control (segments immutable, playlists for what is left of their
 * freshness), ETag and Last-Modified from the origin, single byte ranges,
 * If-None-Match, CORS, and X-Cache (HIT, MISS or STALE). Everything else is
 * a JSON error: 400 for a path outside the allowed shape, 404 for a stream
 * that is not live or an object the origin does not have, 502/503/504 when
 * the origin or the route cannot be had and nothing is cached. */
#ifndef SLUICE_EDGE_HANDLER_H
#define SLUICE_EDGE_HANDLER_H

struct edge;
struct edge_req;

/* Answers one request of the viewer port (the server's handler; its arg is
 * the struct edge). */
void edge_handle(struct edge_req *req);

/* Adds the CORS headers to e->server's replies. Returns 0 or -1. */
int edge_handler_install(struct edge *e);

#endif
