/* HTTP client helper on evhttp: see httpc.h. */
#include "sluice/httpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/net.h"

/* One request in flight. */
struct call {
    struct httpc *c;
    struct evhttp_request *req;    /* owned by evhttp until done or cancelled */
    struct event *timer;
    unsigned conn;                 /* index into c->conns */
    const char *error;             /* set by the error callback */
    httpc_cb cb;
    void *arg;
    struct call *prev, *next;
};

struct httpc {
    struct event_base *base;
    struct evdns_base *dns;
    char host[256];
    char host_header[300];
    int port;
    int timeout_ms;
    size_t max_body, max_headers;
    unsigned nconns;
    struct evhttp_connection **conns;
    unsigned *load;                /* requests in flight per connection */
    struct call *calls;
    unsigned ncalls;
};

static void call_unlink(struct call *k)
{
    struct httpc *c = k->c;
    if (k->prev)
        k->prev->next = k->next;
    else
        c->calls = k->next;
    if (k->next)
        k->next->prev = k->prev;
    c->ncalls--;
    c->load[k->conn]--;
    event_free(k->timer);
    free(k);
}

/* Runs the callback once and forgets the call. */
static void call_finish(struct call *k, const struct httpc_response *resp)
{
    httpc_cb cb = k->cb;
    void *arg = k->arg;
    call_unlink(k);
    cb(resp, arg);
}

static void finish_error(struct call *k, const char *error)
{
    struct httpc_response resp = { .error = error };
    call_finish(k, &resp);
}

static const char *error_text(enum evhttp_request_error e)
{
    switch (e) {
    case EVREQ_HTTP_TIMEOUT: return "timeout";
    case EVREQ_HTTP_EOF: return "connection closed";
    case EVREQ_HTTP_INVALID_HEADER: return "invalid response header";
    case EVREQ_HTTP_BUFFER_ERROR: return "connection error";
    case EVREQ_HTTP_REQUEST_CANCEL: return "cancelled";
    case EVREQ_HTTP_DATA_TOO_LONG: return "response too large";
    }
    return "error";
}

static void on_error(enum evhttp_request_error e, void *arg)
{
    struct call *k = arg;
    k->error = error_text(e);
}

static void on_done(struct evhttp_request *req, void *arg)
{
    struct call *k = arg;
    k->req = NULL;   /* evhttp frees it after we return */
    int status = req ? evhttp_request_get_response_code(req) : 0;
    if (req == NULL || status == 0) {
        finish_error(k, k->error ? k->error : "connection failed");
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    struct httpc_response resp = {
        .status = status,
        .body = evhttp_request_get_input_buffer(req),
        .content_type = evhttp_find_header(h, "Content-Type"),
        .headers = h,
    };
    call_finish(k, &resp);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct call *k = arg;
    if (k->req != NULL)
        evhttp_cancel_request(k->req);   /* frees it; on_done is not called */
    finish_error(k, "timeout");
}

/* Parses "http://host:port" into the client. */
static int parse_origin(struct httpc *c, const char *origin)
{
    const char *p = origin;
    if (strncmp(p, "http://", 7) != 0)
        return -1;
    p += 7;
    if (strchr(p, '/') != NULL || strchr(p, '@') != NULL)
        return -1;
    if (strchr(p, ':') == NULL || p[strlen(p) - 1] == ']') {
        snprintf(c->host, sizeof(c->host), "%s", p);
        c->port = 80;
    } else if (net_split_hostport(p, c->host, sizeof(c->host), &c->port) == -1) {
        return -1;
    }
    snprintf(c->host_header, sizeof(c->host_header), "%s", p);
    if (c->host[0] == '[') {   /* "[::1]" without a port */
        memmove(c->host, c->host + 1, strlen(c->host));
        c->host[strlen(c->host) - 1] = '\0';
    }
    return c->host[0] ? 0 : -1;
}

struct httpc *httpc_new(struct event_base *base, struct evdns_base *dns,
                        const char *origin, const struct httpc_options *opts)
{
    struct httpc *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->base = base;
    c->dns = dns;
    c->timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : 5000;
    c->nconns = opts && opts->connections ? opts->connections : 4;
    c->max_body = opts ? opts->max_body : 0;
    c->max_headers = opts ? opts->max_headers : 0;
    if (parse_origin(c, origin) == -1) {
        char safe[128];
        log_error("http client: bad origin \"%s\" (want http://host:port)",
                  log_escape(safe, sizeof(safe), origin, strlen(origin)));
        free(c);
        return NULL;
    }
    c->conns = calloc(c->nconns, sizeof(*c->conns));
    c->load = calloc(c->nconns, sizeof(*c->load));
    if (c->conns == NULL || c->load == NULL) {
        httpc_free(c);
        return NULL;
    }
    return c;
}

/* The least loaded connection, made on first use. */
static int pick_conn(struct httpc *c, unsigned *index)
{
    unsigned best = 0;
    for (unsigned i = 1; i < c->nconns; i++) {
        if (c->load[i] < c->load[best])
            best = i;
    }
    if (c->conns[best] == NULL) {
        c->conns[best] = evhttp_connection_base_new(c->base, c->dns, c->host,
                                                    (ev_uint16_t)c->port);
        if (c->conns[best] == NULL)
            return -1;
        struct timeval tv = clock_tv_ms(c->timeout_ms);
        evhttp_connection_set_timeout_tv(c->conns[best], &tv);
        evhttp_connection_set_retries(c->conns[best], 0);
        if (c->max_body)
            evhttp_connection_set_max_body_size(c->conns[best], (ev_ssize_t)c->max_body);
        if (c->max_headers)
            evhttp_connection_set_max_headers_size(c->conns[best],
                                                   (ev_ssize_t)c->max_headers);
    }
    *index = best;
    return 0;
}

static const struct {
    const char *name;
    enum evhttp_cmd_type cmd;
} methods[] = {
    { "GET", EVHTTP_REQ_GET }, { "POST", EVHTTP_REQ_POST }, { "PUT", EVHTTP_REQ_PUT },
    { "DELETE", EVHTTP_REQ_DELETE }, { "PATCH", EVHTTP_REQ_PATCH },
    { "HEAD", EVHTTP_REQ_HEAD },
};

static struct evhttp_request *build_request(struct call *k, const char *const *headers,
                                            const void *body, size_t len)
{
    struct evhttp_request *req = evhttp_request_new(on_done, k);
    if (req == NULL)
        return NULL;
    evhttp_request_set_error_cb(req, on_error);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", k->c->host_header);
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        evhttp_add_header(h, headers[i], headers[i + 1]);
    if (body && len && evbuffer_add(evhttp_request_get_output_buffer(req), body, len)) {
        evhttp_request_free(req);
        return NULL;
    }
    return req;
}

int httpc_request(struct httpc *c, const char *method, const char *path_query,
                  const char *const *headers, const void *body, size_t len,
                  httpc_cb cb, void *arg)
{
    enum evhttp_cmd_type cmd = 0;
    bool known = false;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]) && !known; i++) {
        known = strcmp(method, methods[i].name) == 0;
        cmd = methods[i].cmd;
    }
    struct call *k = calloc(1, sizeof(*k));
    if (!known || k == NULL || pick_conn(c, &k->conn) == -1)
        goto fail;
    k->c = c;
    k->cb = cb;
    k->arg = arg;
    k->timer = evtimer_new(c->base, on_timeout, k);
    k->req = k->timer ? build_request(k, headers, body, len) : NULL;
    if (k->req == NULL)
        goto fail;
    if (evhttp_make_request(c->conns[k->conn], k->req, cmd, path_query) == -1) {
        k->req = NULL;   /* evhttp freed it */
        goto fail;
    }
    struct timeval tv = clock_tv_ms(c->timeout_ms);
    evtimer_add(k->timer, &tv);
    c->load[k->conn]++;
    c->ncalls++;
    k->next = c->calls;
    if (c->calls)
        c->calls->prev = k;
    c->calls = k;
    return 0;
fail:
    if (k) {
        if (k->timer)
            event_free(k->timer);
        free(k);
    }
    return -1;
}

unsigned httpc_pending(const struct httpc *c)
{
    return c->ncalls;
}

void httpc_free(struct httpc *c)
{
    if (c == NULL)
        return;
    while (c->calls) {
        struct call *k = c->calls;
        if (k->req)
            evhttp_cancel_request(k->req);
        finish_error(k, "cancelled");
    }
    for (unsigned i = 0; c->conns && i < c->nconns; i++) {
        if (c->conns[i])
            evhttp_connection_free(c->conns[i]);
    }
    free(c->conns);
    free(c->load);
    free(c);
}
