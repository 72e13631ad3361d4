/* The admin port: /metrics, /healthz, /readyz. See admin.h. */
#include "sluice/admin.h"
#include "daemon_int.h"

#include <stdlib.h>

#include <event2/buffer.h>

#include "sluice/daemon.h"
#include "sluice/http.h"
#include "sluice/log.h"
#include "sluice/metrics.h"


struct admin {
    struct daemon *d;
    admin_ready_fn ready;
    void *arg;
};

static void get_metrics(struct http_request *req)
{
    struct admin *a = req->route_arg;
    struct evbuffer *out = evbuffer_new();
    if (out == NULL) {
        http_error(req, 503, "overloaded", "out of memory");
        return;
    }
    metrics_render(a->d->metrics, out);
    http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", out);
    evbuffer_free(out);
}

static void get_healthz(struct http_request *req)
{
    http_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static void get_readyz(struct http_request *req)
{
    struct admin *a = req->route_arg;
    json_t *checks = json_object();
    bool ready = a->ready ? a->ready(checks, a->arg) : true;
    if (daemon_stopping(a->d)) {
        json_object_set_new(checks, "shutdown", json_string("stopping"));
        ready = false;
    }
    http_reply_json(req, ready ? 200 : 503,
                    json_pack("{s:b, s:o}", "ready", ready, "checks", checks));
}

static const struct http_route admin_routes[] = {
    { HTTP_GET, "/metrics", get_metrics },
    { HTTP_GET, "/healthz", get_healthz },
    { HTTP_GET, "/readyz", get_readyz },
    { 0 },
};

static void admin_free_arg(void *arg)
{
    free(arg);
}

struct http_server *admin_start(struct daemon *d, const char *addr, admin_ready_fn ready,
                                void *arg, char **err)
{
    struct admin *a = calloc(1, sizeof(*a));
    struct http_server_options o = { .name = "admin", .max_connections = 64,
                                     .metrics = d->metrics };
    struct http_server *s = a ? http_server_new(d->base, &o) : NULL;
    if (s == NULL) {
        free(a);
        *err = NULL;
        return NULL;
    }
    a->d = d;
    a->ready = ready;
    a->arg = arg;
    http_server_routes(s, admin_routes, a);
    http_server_set_free_cb(s, admin_free_arg, a);
    if (http_server_listen(s, addr, err) == -1) {
        http_server_free(s);
        return NULL;
    }
    daemon_set_admin_(d, s);
    log_info("admin port on %s (/metrics, /healthz, /readyz)", addr);
    return s;
}
