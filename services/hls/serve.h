/* The origin's HTTP port (listen, 8080): what the edge fetches.
 *
 *   GET|HEAD /live/<name>/index.m3u8      the live playlist
 *   GET|HEAD /live/<name>/<epoch>-<seq>.ts a segment in or recently out of it
 *
 * Served from memory by reference (sluice/refbuf.h): no copy per request, no disk.
 * Segments are immutable (their names carry the owner's epoch), playlists
 * fresh for half a target duration; see docs/hls.md for the headers.
 */
#ifndef SLUICE_HLS_SERVE_H
#define SLUICE_HLS_SERVE_H

struct hls;

/* Adds the routes to h->http. Returns 0 or -1. */
int serve_install(struct hls *h);

#endif
