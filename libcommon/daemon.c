/* Daemon lifecycle: see daemon.h. */
#include "sluice/daemon.h"
#include "daemon_int.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "sluice/clock.h"
#include "sluice/http.h"
#include "sluice/log.h"
#include "sluice/metrics.h"

#define MAX_STOP_HOOKS 16

struct daemon_private {
    struct event *sig_term, *sig_int, *sig_hup, *deadline;
    struct {
        void (*fn)(void *);
        void *arg;
    } hook[MAX_STOP_HOOKS];
    int nhooks;
    int holds;
    bool stopping;
    struct http_server *admin;   /* set by admin_start(), freed here */
};

static const struct config_opt common_opts[] = {
    { "log-level", CONF_STR, offsetof(struct common_config, log_level), "info", 1, 0,
      "debug, info, warn or error" },
    { "log-format", CONF_STR, offsetof(struct common_config, log_format), "text", 1, 0,
      "text or json (one object per line)" },
    { "log-file", CONF_STR, offsetof(struct common_config, log_file), "", 0, 0,
      "log to this file instead of stderr (reopened on SIGHUP)" },
    { "redis-url", CONF_SECRET, offsetof(struct common_config, redis_url),
      "redis://127.0.0.1:6379", 1, 0, "Redis, as redis://[[user]:password@]host[:port][/db]" },
    { "node-id", CONF_STR, offsetof(struct common_config, node_id), "", 0, 0,
      "this node's id in Redis and SLP (default: the host name)" },
    { "shutdown-timeout", CONF_MS, offsetof(struct common_config, shutdown_timeout_ms),
      "8s", 0, 600000, "how long a stop may drain before exiting anyway" },
    { NULL },
};

static void finish(struct daemon *d)
{
    event_base_loopexit(d->base, NULL);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *d = arg;
    log_warn("shutdown: still draining after the timeout, exiting anyway");
    finish(d);
}

void daemon_stop(struct daemon *d)
{
    struct daemon_private *p = d->priv;
    if (p->stopping) {
        log_warn("shutdown: second signal, exiting now");
        finish(d);
        return;
    }
    p->stopping = true;
    log_info("shutdown: stopping (draining for up to %lld ms)",
             (long long)d->common.shutdown_timeout_ms);
    p->holds++;   /* so that a hook releasing synchronously cannot finish early */
    for (int i = p->nhooks - 1; i >= 0; i--)
        p->hook[i].fn(p->hook[i].arg);
    struct timeval tv = clock_tv_ms(d->common.shutdown_timeout_ms);
    evtimer_add(p->deadline, &tv);
    daemon_release(d);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct daemon *d = arg;
    if (sig == SIGHUP) {
        log_info("SIGHUP: reopening the log");
        log_reopen();
        return;
    }
    daemon_stop(d);
}

void daemon_on_stop(struct daemon *d, void (*fn)(void *), void *arg)
{
    struct daemon_private *p = d->priv;
    if (p->nhooks == MAX_STOP_HOOKS) {
        log_error("daemon: too many stop hooks");
        abort();
    }
    p->hook[p->nhooks].fn = fn;
    p->hook[p->nhooks].arg = arg;
    p->nhooks++;
}

void daemon_hold(struct daemon *d)
{
    d->priv->holds++;
}

void daemon_release(struct daemon *d)
{
    struct daemon_private *p = d->priv;
    if (--p->holds == 0 && p->stopping) {
        log_info("shutdown: drained");
        finish(d);
    }
}

bool daemon_stopping(const struct daemon *d)
{
    return d->priv->stopping;
}

int daemon_run(struct daemon *d)
{
    log_info("running as node %s", d->node_id);
    event_base_dispatch(d->base);
    return 0;
}

/* Parses the configuration and sets up logging. Returns 0, or the exit code. */
static int configure(struct daemon *d, const struct config_opt *opts, void *conf,
                     int argc, char **argv)
{
    struct config_table tables[] = { { common_opts, &d->common }, { opts, conf } };
    char *err = NULL;
    char prog[64];
    snprintf(prog, sizeof(prog), "sluice-%s", d->name);
    enum config_result rc = config_load(tables, opts ? 2 : 1, prog, argc, argv, &err);
    if (rc == CONFIG_EXIT)
        return 0;
    enum log_level level;
    enum log_format format;
    if (rc == CONFIG_OK && log_level_parse(d->common.log_level, &level) == -1)
        rc = CONFIG_ERROR, err = strdup("log-level: want debug, info, warn or error");
    else if (rc == CONFIG_OK && log_format_parse(d->common.log_format, &format) == -1)
        rc = CONFIG_ERROR, err = strdup("log-format: want text or json");
    if (rc == CONFIG_ERROR) {
        fprintf(stderr, "%s: configuration error: %s\n", prog, err ? err : "?");
        free(err);
        return 1;
    }
    if (log_init(d->name, level, format, d->common.log_file) == -1) {
        fprintf(stderr, "%s: cannot open log file %s\n", prog, d->common.log_file);
        return 1;
    }
    if (d->common.node_id[0])
        snprintf(d->node_id, sizeof(d->node_id), "%s", d->common.node_id);
    else if (gethostname(d->node_id, sizeof(d->node_id) - 1) == -1)
        snprintf(d->node_id, sizeof(d->node_id), "node");
    return -1;
}

static int setup_loop(struct daemon *d)
{
    struct daemon_private *p = d->priv;
    evthread_use_pthreads();   /* some daemons hand work over from other threads */
    /* With the changelist, epoll merges the changes one turn of the loop makes
     * to a descriptor into one epoll_ctl: evhttp's read-off, write-on,
     * write-off, read-on per request cost 2 calls instead of 4 (+40% requests/s
     * on small cached objects, docs/edge.md). Safe because no daemon hands
     * libevent a dup()ed descriptor. */
    struct event_config *cfg = event_config_new();
    if (cfg == NULL)
        return -1;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    d->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (d->base == NULL)
        return -1;
    d->dns = evdns_base_new(d->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                     EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (d->dns == NULL)   /* no resolv.conf: addresses still work */
        d->dns = evdns_base_new(d->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    d->metrics = metrics_new();
    p->sig_term = evsignal_new(d->base, SIGTERM, on_signal, d);
    p->sig_int = evsignal_new(d->base, SIGINT, on_signal, d);
    p->sig_hup = evsignal_new(d->base, SIGHUP, on_signal, d);
    p->deadline = evtimer_new(d->base, on_deadline, d);
    if (!d->dns || !d->metrics || !p->sig_term || !p->sig_int || !p->sig_hup || !p->deadline)
        return -1;
    evsignal_add(p->sig_term, NULL);
    evsignal_add(p->sig_int, NULL);
    evsignal_add(p->sig_hup, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

struct daemon *daemon_new(const char *name, const struct config_opt *opts, void *conf,
                          int argc, char **argv, int *exit_code)
{
    struct daemon *d = calloc(1, sizeof(*d));
    if (d == NULL || (d->priv = calloc(1, sizeof(*d->priv))) == NULL) {
        free(d);
        *exit_code = 1;
        return NULL;
    }
    d->name = name;
    int rc = configure(d, opts, conf, argc, argv);
    if (rc == -1 && setup_loop(d) == -1) {
        log_error("cannot set up the event loop");
        rc = 1;
    }
    if (rc != -1) {
        *exit_code = rc;
        daemon_free(d, opts, conf);
        return NULL;
    }
    return d;
}

void daemon_set_admin_(struct daemon *d, struct http_server *admin)
{
    d->priv->admin = admin;
}

int daemon_free(struct daemon *d, const struct config_opt *opts, void *conf)
{
    if (d == NULL)
        return 0;
    struct daemon_private *p = d->priv;
    http_server_free(p->admin);
    if (p->sig_term) event_free(p->sig_term);
    if (p->sig_int) event_free(p->sig_int);
    if (p->sig_hup) event_free(p->sig_hup);
    if (p->deadline) event_free(p->deadline);
    metrics_free(d->metrics);
    if (d->dns)
        evdns_base_free(d->dns, 0);
    if (d->base)
        event_base_free(d->base);
    struct config_table tables[] = { { common_opts, &d->common }, { opts, conf } };
    config_free(tables, opts ? 2 : 1);
    log_close();
    free(p);
    free(d);
    libevent_global_shutdown();
    return 0;
}
