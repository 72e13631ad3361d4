/* Clocks: wall time for timestamps carried between daemons, monotonic time for
 * everything that measures an interval. */
#ifndef SLUICE_CLOCK_H
#define SLUICE_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

/* Microseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t clock_wall_us(void);

/* Milliseconds and microseconds of CLOCK_MONOTONIC. */
int64_t clock_mono_ms(void);
int64_t clock_mono_us(void);

/* A struct timeval of <ms> milliseconds, for libevent timers. */
struct timeval clock_tv_ms(int64_t ms);

/* Formats <wall_us> as RFC 3339 UTC with milliseconds
 * ("2026-11-21T10:00:00.123Z") into <dst> (at least 25 bytes). */
char *clock_rfc3339(char *dst, size_t dstlen, int64_t wall_us);

#endif
