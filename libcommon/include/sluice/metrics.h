/* Metrics: counters, gauges and histograms with labels, in Prometheus text
 * exposition format (version 0.0.4).
 *
 * A daemon lists its metrics once, in a table:
 *
 *   static const struct metric_def relay_metric_defs[] = {
 *       { "sluice_relay_streams", METRIC_GAUGE, "Live streams" },
 *       { "sluice_relay_bytes_in_total", METRIC_COUNTER, "Media bytes received",
 *         { "stream" } },
 *       { NULL }
 *   };
 *
 * registers it, keeps the family handles, and on hot paths keeps the series
 * pointer it got from metric_at() so that an update is one addition.
 * Series live until metric_remove() or metrics_free(). Not thread-safe: use
 * from the event loop only.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stddef.h>

#define METRIC_MAX_LABELS 4

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metric_def {
    const char *name;
    enum metric_type type;
    const char *help;
    const char *labels[METRIC_MAX_LABELS];  /* names, NULL-terminated */
    const double *buckets;                  /* histograms: upper bounds, ascending, */
    size_t nbuckets;                        /* without +Inf; NULL = default seconds */
};

struct metrics;
struct metric;
struct metric_series;
struct evbuffer;

/* Constructor; NULL on allocation failure. */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Registers each definition of <defs> (ended by a NULL name) and stores the
 * family handles in <out>, in order. Registering the same table again returns
 * the same handles. Returns 0, or -1 (logged) when another definition already
 * has a name, or on allocation failure. <defs> must outlive the registry. */
int metrics_register(struct metrics *m, const struct metric_def *defs,
                     struct metric **out);

/* The series of <family> with the given label values, one const char * per
 * label of its definition, created at zero on first use. NULL only on
 * allocation failure; the update functions accept NULL and do nothing. */
struct metric_series *metric_at(struct metric *family, ...);

/* Drops the series (a connection's metrics when it closes). NULL is fine. */
void metric_remove(struct metric_series *s);

void metric_add(struct metric_series *s, double v);      /* counter, gauge */
void metric_set(struct metric_series *s, double v);      /* gauge */
void metric_observe(struct metric_series *s, double v);  /* histogram */
double metric_value(const struct metric_series *s);      /* counter, gauge */

/* Calls <fn> right before every exposition, so gauges that are cheap to
 * compute (connection counts, queue depths) are set only when scraped. */
void metrics_on_collect(struct metrics *m, void (*fn)(void *arg), void *arg);

/* Appends the exposition of every family to <out>. Returns 0 or -1. */
int metrics_render(struct metrics *m, struct evbuffer *out);

/* Default histogram buckets, in seconds, from 0.5 ms to 10 s. */
extern const double metrics_default_buckets[];
extern const size_t metrics_default_nbuckets;

#endif
