/* Origin clients: see origin.h. */
#include "origin.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/clock.h"
#include "sluice/httpc.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/url.h"
#include "table.h"

struct origin {
    struct table_node node;
    struct origins *os;
    struct httpc *client;
    int64_t down_until;      /* ms; not tried before then */
    int64_t last_used;       /* ms */
    unsigned pending;
    char url[ORIGIN_URL_MAX + 1];
};

struct fetch {
    struct origin *org;
    origin_cb cb;
    void *arg;
    int64_t started_us;
};

struct origins {
    struct event_base *base;
    struct evdns_base *dns;
    struct origin_options o;
    struct edge_stats *st;
    struct table index;
    unsigned in_flight;
};

struct origins *origins_new(struct event_base *base, struct evdns_base *dns,
                            const struct origin_options *o, struct edge_stats *st)
{
    struct origins *os = calloc(1, sizeof(*os));
    if (os == NULL)
        return NULL;
    os->base = base;
    os->dns = dns;
    os->o = *o;
    os->st = st;
    table_init(&os->index);
    return os;
}

static void origin_free(struct origins *os, struct origin *org)
{
    httpc_free(org->client);   /* callbacks of what is in flight run now */
    table_remove(&os->index, &org->node);
    free(org);
}

void origins_free(struct origins *os)
{
    if (os == NULL)
        return;
    struct table_iter it;
    table_iter_init(&os->index, &it);
    for (struct table_node *n; (n = table_iter_next(&it)) != NULL;)
        origin_free(os, container_of(n, struct origin, node));
    table_release(&os->index);
    free(os);
}

static struct origin *origin_get(struct origins *os, const char *url)
{
    size_t len = strlen(url);
    struct table_node *n = table_find(&os->index, url, len);
    if (n != NULL)
        return container_of(n, struct origin, node);
    if (len > ORIGIN_URL_MAX)
        return NULL;
    struct origin *org = calloc(1, sizeof(*org));
    if (org == NULL)
        return NULL;
    memcpy(org->url, url, len + 1);
    org->os = os;
    struct httpc_options ho = {
        .timeout_ms = (int)os->o.timeout_ms,
        .connections = os->o.connections,
        .max_body = os->o.max_body,
        .max_headers = 64 * 1024,
    };
    org->client = httpc_new(os->base, os->dns, url, &ho);
    if (org->client == NULL || table_insert(&os->index, &org->node, org->url, len) == -1) {
        httpc_free(org->client);
        free(org);
        return NULL;
    }
    return org;
}

static enum fetch_result classify(const struct httpc_response *resp)
{
    if (resp->status == 200)
        return FR_OK;
    if (resp->status == 404 || resp->status == 410)
        return FR_NOT_FOUND;
    if (resp->status != 0)
        return FR_BAD_STATUS;
    if (resp->error && strcmp(resp->error, "timeout") == 0)
        return FR_TIMEOUT;
    if (resp->error && strcmp(resp->error, "response too large") == 0)
        return FR_TOO_LARGE;
    return FR_UNREACHABLE;
}

/* Keeps the origin's health: back off after a transport failure. */
static void note_health(struct origin *org, const struct httpc_response *resp,
                        enum fetch_result res)
{
    int64_t now = clock_mono_ms();
    bool cancelled = resp->error && strcmp(resp->error, "cancelled") == 0;
    if ((res == FR_TIMEOUT || res == FR_UNREACHABLE) && !cancelled) {
        if (org->down_until == 0)
            log_warn("origin %s: %s; not asked again for %lld ms", org->url,
                     resp->error ? resp->error : "no answer",
                     (long long)org->os->o.retry_ms);
        org->down_until = now + org->os->o.retry_ms;
    } else if (resp->status != 0 && org->down_until != 0) {
        log_info("origin %s: answering again", org->url);
        org->down_until = 0;
    }
}

static void on_answer(const struct httpc_response *resp, void *arg)
{
    struct fetch *f = arg;
    struct origin *org = f->org;
    struct origins *os = org->os;
    org->pending--;
    os->in_flight--;
    org->last_used = clock_mono_ms();
    enum fetch_result res = classify(resp);
    note_health(org, resp, res);
    if (os->st) {
        metric_add(os->st->fetch[res], 1);
        metric_observe(os->st->fetch_seconds,
                       (double)(clock_mono_us() - f->started_us) / 1e6);
        metric_set(os->st->in_flight, os->in_flight);
    }
    origin_cb cb = f->cb;
    void *cbarg = f->arg;
    free(f);
    cb(resp, res, cbarg);
}

static int refuse(struct origins *os, enum fetch_result res, enum fetch_result *why)
{
    if (os->st)
        metric_add(os->st->fetch[res], 1);
    *why = res;
    return -1;
}

int origins_fetch(struct origins *os, const char *url, const char *path, origin_cb cb,
                  void *arg, enum fetch_result *why)
{
    if (os->in_flight >= os->o.max_fetches)
        return refuse(os, FR_OVERLOADED, why);
    struct origin *org = origin_get(os, url);
    if (org == NULL)
        return refuse(os, FR_UNREACHABLE, why);
    int64_t now = clock_mono_ms();
    org->last_used = now;
    if (org->down_until != 0 && now < org->down_until)
        return refuse(os, FR_ORIGIN_DOWN, why);
    struct fetch *f = malloc(sizeof(*f));
    if (f == NULL)
        return refuse(os, FR_UNREACHABLE, why);
    *f = (struct fetch){ org, cb, arg, clock_mono_us() };
    static const char *const headers[] = { "Accept-Encoding", "identity", NULL };
    if (httpc_request(org->client, "GET", path, headers, NULL, 0, on_answer, f) == -1) {
        free(f);
        return refuse(os, FR_UNREACHABLE, why);
    }
    org->pending++;
    os->in_flight++;
    if (os->st)
        metric_set(os->st->in_flight, os->in_flight);
    return 0;
}

unsigned origins_in_flight(const struct origins *os)
{
    return os->in_flight;
}

void origins_sweep(struct origins *os, int64_t idle_ms)
{
    int64_t now = clock_mono_ms();
    struct table_iter it;
    table_iter_init(&os->index, &it);
    for (struct table_node *n; (n = table_iter_next(&it)) != NULL;) {
        struct origin *org = container_of(n, struct origin, node);
        if (org->pending == 0 && now - org->last_used > idle_ms)
            origin_free(os, org);
    }
}
