/* The viewer port's replies: heads rendered with memcpy into one buffer, JSON
 * errors, and the request metrics. See server.h. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "body.h"
#include "server_int.h"
#include "sluice/clock.h"
#include "sluice/log.h"
#include "sluice/metrics.h"

#define HEAD_MAX (EDGE_SERVER_HEADERS + EDGE_REPLY_HEADERS + 512)

static const char *const route_names[ER_COUNT] = { "live", "vod", "unmatched" };

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* A head being rendered; <len> stops growing at the end of <buf>. */
struct head {
    char buf[HEAD_MAX];
    size_t len;
};

static void put(struct head *h, const char *s, size_t n)
{
    if (n > sizeof(h->buf) - h->len)
        n = sizeof(h->buf) - h->len;
    memcpy(h->buf + h->len, s, n);
    h->len += n;
}

static void puts_(struct head *h, const char *s)
{
    put(h, s, strlen(s));
}

static void put_u64(struct head *h, uint64_t v)
{
    char digits[24], *p = digits + sizeof(digits);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(h, p, (size_t)(digits + sizeof(digits) - p));
}

/* "Date: <IMF-fixdate>\r\n", formatted once per second. */
static const char *date_line(struct edge_server *s)
{
    struct timeval tv;
    event_base_gettimeofday_cached(s->base, &tv);
    if (tv.tv_sec != s->date_sec) {
        struct tm tm;
        time_t t = tv.tv_sec;
        gmtime_r(&t, &tm);
        strftime(s->date, sizeof(s->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        s->date_sec = tv.tv_sec;
    }
    return s->date;
}

/* The request counter of <route> and <status>, resolved once. */
static struct metric_series *status_series(struct edge_server *s, enum edge_route route,
                                           int status)
{
    struct status_series *slots = s->counted[route];
    for (size_t i = 0; i < STATUS_SLOTS; i++) {
        if (slots[i].status == status)
            return slots[i].series;
        if (slots[i].status == 0) {
            char code[8];
            snprintf(code, sizeof(code), "%d", status);
            slots[i].status = status;
            slots[i].series = metric_at(s->m[HTTP_M_REQUESTS], "edge", route_names[route], code);
            return slots[i].series;
        }
    }
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    return metric_at(s->m[HTTP_M_REQUESTS], "edge", route_names[route], code);
}

static void count(struct edge_server *s, const struct edge_req *req, int status)
{
    if (!s->counting)
        return;
    metric_add(status_series(s, req->route, status), 1);
    double secs = (double)(clock_mono_us() - req->started_us) / 1e6;
    metric_observe(s->duration[req->route], secs);
}

/* Whether the connection closes after this reply. */
static bool closes(const struct edge_conn *c)
{
    const struct http1_request *h = &c->req.head;
    return c->close_after || c->s->stopping || !h->keep_alive || h->has_body;
}

static void render_head(struct edge_conn *c, struct head *h, int status,
                        const char *content_type, uint64_t length)
{
    const struct edge_req *req = &c->req;
    puts_(h, "HTTP/1.1 ");
    put_u64(h, (uint64_t)status);
    put(h, " ", 1);
    puts_(h, reason(status));
    put(h, "\r\n", 2);
    puts_(h, date_line(c->s));
    put(h, c->s->headers, c->s->headers_len);
    if (content_type != NULL) {
        puts_(h, "Content-Type: ");
        puts_(h, content_type);
        put(h, "\r\n", 2);
    }
    put(h, req->hdrs, req->hdrs_len);
    if (status != 204 && status != 304) {
        puts_(h, "Content-Length: ");
        put_u64(h, length);
        put(h, "\r\n", 2);
    }
    if (closes(c))
        puts_(h, "Connection: close\r\n");
    else if (req->head.minor == 0)
        puts_(h, "Connection: keep-alive\r\n");
    put(h, "\r\n", 2);
}

void conn_reply(struct edge_conn *c, int status, const char *content_type,
                uint64_t length, const void *data, struct body *b, size_t off)
{
    struct edge_req *req = &c->req;
    count(c->s, req, status);
    if (!c->closed) {
        struct head h;
        h.len = 0;
        render_head(c, &h, status, content_type, length);
        bool with_body = req->method != HTTP1_HEAD && length > 0;
        if (closes(c))
            c->close_after = true;
        if (evbuffer_add(c->out, h.buf, h.len) == -1 ||
            (with_body && data != NULL && evbuffer_add(c->out, data, length) == -1) ||
            (with_body && b != NULL && refbuf_add_to(&b->buf, c->out, off, length) == -1)) {
            log_warn("edge: out of memory for a reply to %s", c->peer);
            c->close_after = true;
        }
    }
    conn_answered(c);
}

void edge_reply(struct edge_req *req, int status, const char *content_type,
                uint64_t length, struct body *b, size_t off)
{
    conn_reply(req->conn_, status, content_type, length, NULL, b, off);
}

/* Appends <s> to <out> as the inside of a JSON string. Returns the new end. */
static char *json_escape(char *out, char *end, const char *s)
{
    for (; *s && end - out > 6; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            *out++ = '\\';
            *out++ = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            out += snprintf(out, (size_t)(end - out), "\\u%04x", c);
        } else {
            *out++ = (char)c;
        }
    }
    return out;
}

void edge_reply_error(struct edge_req *req, int status, const char *code,
                      const char *message)
{
    char body[768], *p = body, *end = body + sizeof(body) - 8;
    p += snprintf(p, (size_t)(end - p), "{\"error\": \"");
    p = json_escape(p, end - 200, code);
    p += snprintf(p, (size_t)(end - p), "\", \"message\": \"");
    p = json_escape(p, end, message);
    memcpy(p, "\"}\n", 3);
    p += 3;
    conn_reply(req->conn_, status, "application/json", (uint64_t)(p - body), body, NULL, 0);
}

void edge_req_add_header(struct edge_req *req, const char *name, const char *value)
{
    size_t n = strlen(name), v = strlen(value);
    if (req->hdrs_len + n + v + 4 > sizeof(req->hdrs)) {
        log_warn("edge: reply header %s dropped (no room)", name);
        return;
    }
    char *p = req->hdrs + req->hdrs_len;
    memcpy(p, name, n);
    memcpy(p + n, ": ", 2);
    memcpy(p + n + 2, value, v);
    memcpy(p + n + 2 + v, "\r\n", 2);
    req->hdrs_len += n + v + 4;
}

const char *edge_req_header(const struct edge_req *req, const char *name)
{
    size_t len;
    return http1_header(&req->head, name, &len);
}
