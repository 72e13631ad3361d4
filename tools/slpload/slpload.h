/* slpload: SLP load in one process, for benchmarks.
 *
 *   slpload subscribe   N subscribers to one stream on a relay; each reads
 *                       and discards, keeping only frame boundaries, and
 *                       counts bytes, MEDIA frames, keyframes and gaps
 *                       (frames flagged DISCONTINUITY).
 *   slpload floor       the syscall floor of fan-out: a "relay" that does
 *                       nothing but write a TS file's MEDIA frames, paced at
 *                       a rate, to N subscribers (slpload subscribe), one
 *                       write per frame per subscriber.
 *
 * Both end after --duration (or when every reader got EOS) and print one
 * JSON object on stdout: the per-reader figures (summed and spread) and
 * slpload's own CPU time, so a benchmark can show that the load generator
 * costs less than what it loads.
 *
 *   main.c      options, the loop, the report
 *   reader.c    the subscribers
 *   floor.c     the floor writer
 */
#ifndef SLPLOAD_H
#define SLPLOAD_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;

struct slpload_config {
    char *relay;          /* subscribe: where to connect */
    char *listen;         /* floor: where to listen */
    char *stream;
    char *file;           /* floor: the TS to send */
    char *from;           /* subscribe: keyframe | live */
    int64_t count;
    int64_t duration_ms;
    int64_t wait_s;
    int64_t rate;         /* floor: bits per second */
    int64_t rcvbuf;       /* subscribe: SO_RCVBUF, 0 = the kernel's */
    bool per_reader;      /* print every reader's figures */
};

struct slpload {
    struct event_base *base;
    struct slpload_config cfg;
};

/* Subscribers. start() connects them all; report() prints the JSON fields
 * (without braces) for the readers; done() is true when all have ended. */
struct readers;
struct readers *readers_start(struct slpload *s);
bool readers_done(const struct readers *rs);
void readers_report(const struct readers *rs, double seconds);
void readers_free(struct readers *rs);

/* The floor writer. */
struct floor_writer;
struct floor_writer *floor_start(struct slpload *s);
void floor_report(const struct floor_writer *fw, double seconds);
void floor_free(struct floor_writer *fw);

#endif
