/* sluice-hls metrics (docs/hls.md, "Metrics"): one table, registered once. */
#ifndef SLUICE_HLS_STATS_H
#define SLUICE_HLS_STATS_H

struct hls;

/* Registers the families and keeps the series in h->stats. Returns 0 or -1. */
int hls_stats_init(struct hls *h);

/* Sets the gauges (streams by role, memory); runs before every scrape. */
void hls_stats_collect(void *arg);

#endif
