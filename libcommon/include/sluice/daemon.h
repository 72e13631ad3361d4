/* Daemon lifecycle on libevent: configuration, logging, one event base, a DNS
 * resolver, a metrics registry, signals handled in the loop, graceful stop.
 *
 *   int main(int argc, char **argv) {
 *       struct relay_config cfg = {0};
 *       struct daemon *d = daemon_new("relay", relay_opts, &cfg, argc, argv, &rc);
 *       if (d == NULL) return rc;              // 0 after --help, 1 on error
 *       ... build components on d->base, daemon_on_stop(d, relay_stop, relay);
 *       daemon_run(d);                         // returns once stopped
 *       ... free components ...
 *       return daemon_free(d, relay_opts, &cfg);
 *   }
 *
 * SIGTERM or SIGINT: the stop hooks run (last registered first); each stops
 * accepting and starts draining. The loop ends when nothing holds it
 * (daemon_hold/daemon_release) or when shutdown-timeout (default 10 s) passes.
 * A second signal ends it at once. SIGHUP reopens the log file. SIGPIPE is
 * ignored.
 */
#ifndef SLUICE_DAEMON_H
#define SLUICE_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct event_base;
struct evdns_base;
struct metrics;

/* Options every daemon shares (SLUICE_LOG_LEVEL, SLUICE_REDIS_URL, ...). */
struct common_config {
    char *log_level;
    char *log_format;
    char *log_file;
    char *redis_url;
    char *node_id;               /* "" = the host name */
    int64_t shutdown_timeout_ms;
};

struct daemon {
    const char *name;            /* "relay" */
    struct event_base *base;
    struct evdns_base *dns;
    struct metrics *metrics;
    struct common_config common;
    char node_id[128];           /* common.node_id, or the host name */
    struct daemon_private *priv;
};

/* Loads <opts> into <conf> (with the shared options), sets up logging, the
 * event base, DNS, metrics and signals. Returns NULL with *<exit_code> set: 0
 * after --help, 1 on a configuration error (printed to stderr). */
struct daemon *daemon_new(const char *name, const struct config_opt *opts,
                          void *conf, int argc, char **argv, int *exit_code);

/* Registers a stop hook; up to 16. */
void daemon_on_stop(struct daemon *d, void (*fn)(void *arg), void *arg);

/* While held, a stopping daemon keeps its loop running (until the deadline). */
void daemon_hold(struct daemon *d);
void daemon_release(struct daemon *d);

/* True once a stop has begun. */
bool daemon_stopping(const struct daemon *d);

/* Begins a stop, as SIGTERM does. */
void daemon_stop(struct daemon *d);

/* Runs the loop until stopped. Returns 0. */
int daemon_run(struct daemon *d);

/* Frees everything daemon_new made, and the strings of <conf>. Returns the
 * process exit code (0). */
int daemon_free(struct daemon *d, const struct config_opt *opts, void *conf);

#endif
