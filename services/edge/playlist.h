/* What the edge reads in a playlist: its target duration (RFC 8216
 * 4.3.3.1, "#EXT-X-TARGETDURATION:<s>"), which sets how long the edge may keep
 * it, and whether it ended (4.3.3.4, "#EXT-X-ENDLIST"), which says whether a
 * stream whose route vanished was still live. Pure functions over the bytes
 * the origin sent. */
#ifndef SLUICE_EDGE_PLAYLIST_H
#define SLUICE_EDGE_PLAYLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLAYLIST_TARGET_MAX_S 86400   /* larger values are refused as absurd */

/* Finds the first EXT-X-TARGETDURATION tag at the start of a line in the <len>
 * bytes at <buf> and stores its value in milliseconds in *<ms> (the RFC asks
 * for a decimal integer; a decimal fraction such as "2.5" is accepted too).
 * Returns 0, or -1 when there is none (a master playlist) or its value is
 * malformed, zero, or above PLAYLIST_TARGET_MAX_S. */
int playlist_target_duration(const char *buf, size_t len, int64_t *ms);

/* True if a line of the <len> bytes at <buf> is the EXT-X-ENDLIST tag (blanks
 * and a CR before its end allowed): no more segments will be added. */
bool playlist_ended(const char *buf, size_t len);

#endif
