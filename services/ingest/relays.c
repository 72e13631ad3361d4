/* The relay directory: see relays.h. */
#include "relays.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "sluice/clock.h"
#include "sluice/json.h"
#include "sluice/log.h"
#include "sluice/net.h"
#include "sluice/redis.h"

#define MAX_RELAYS 256
#define SCAN_ROUNDS 64           /* SCAN calls per refresh, at most */

struct relay {
    struct relay_choice c;
    int64_t streams;             /* as announced, plus our picks since */
};

struct relays {
    struct redis *r;
    struct event *timer;
    int64_t refresh_ms;
    char fixed[RELAY_ADDR_MAX + 1];
    struct relay *list;          /* the last complete refresh */
    size_t n;
    /* the refresh under way */
    bool busy;
    int rounds;
    char **keys;
    size_t nkeys;
};

/* ---- parsing ------------------------------------------------------------ */

static bool visible(const char *s, size_t min, size_t max)
{
    size_t len = strlen(s);
    if (len < min || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    }
    return true;
}

int relay_record_parse(const char *json, size_t len, struct relay_choice *out,
                       int64_t *streams)
{
    char err[128], host[256];
    int port;
    const char *id = NULL, *addr = NULL;
    json_t *o = json_parse(json, len, err, sizeof(err));
    int rc = -1;
    *streams = 0;
    if (json_is_object(o) && json_get_str(o, "id", &id) == 0 &&
        json_get_str(o, "address", &addr) == 0 && visible(id, 1, RELAY_ID_MAX) &&
        visible(addr, 3, RELAY_ADDR_MAX) &&
        net_split_hostport(addr, host, sizeof(host), &port) == 0 && port > 0 &&
        json_get_int(o, "streams", streams) != -1 && *streams >= 0) {
        snprintf(out->id, sizeof(out->id), "%s", id);
        snprintf(out->addr, sizeof(out->addr), "%s", addr);
        rc = 0;
    }
    json_decref(o);
    return rc;
}

int stream_location_parse(const json_t *o, struct relay_choice *out)
{
    char host[256];
    int port;
    const char *id = NULL, *addr = NULL;
    if (!json_is_object(o) || json_get_str(o, "relay", &addr) != 0 ||
        json_get_str(o, "relay_id", &id) != 0 || !visible(id, 1, RELAY_ID_MAX) ||
        !visible(addr, 3, RELAY_ADDR_MAX) ||
        net_split_hostport(addr, host, sizeof(host), &port) == -1 || port == 0)
        return -1;
    snprintf(out->id, sizeof(out->id), "%s", id);
    snprintf(out->addr, sizeof(out->addr), "%s", addr);
    return 0;
}

/* ---- refreshing --------------------------------------------------------- */

static void free_keys(struct relays *rs)
{
    for (size_t i = 0; i < rs->nkeys; i++)
        free(rs->keys[i]);
    free(rs->keys);
    rs->keys = NULL;
    rs->nkeys = 0;
}

static void done(struct relays *rs)
{
    rs->busy = false;
    free_keys(rs);
}

static void on_mget(const struct redis_reply *reply, const char *err, void *arg)
{
    struct relays *rs = arg;
    if (err != NULL || redis_reply_type(reply) != REDIS_R_ARRAY) {
        log_debug("relays: MGET: %s", err ? err : "not an array");
        done(rs);
        return;
    }
    struct relay *list = calloc(MAX_RELAYS, sizeof(*list));
    size_t n = 0;
    for (size_t i = 0; list && i < redis_reply_len(reply) && n < MAX_RELAYS; i++) {
        size_t len;
        const char *s = redis_reply_str(redis_reply_at(reply, i), &len);
        if (s == NULL)
            continue;                         /* expired between SCAN and MGET */
        if (relay_record_parse(s, len, &list[n].c, &list[n].streams) == 0)
            n++;
        else
            log_warn("relays: %s holds no valid relay record", rs->keys[i]);
    }
    if (list != NULL) {
        if (n != rs->n)
            log_info("relays: %zu known", n);
        free(rs->list);
        rs->list = list;
        rs->n = n;
    }
    done(rs);
}

static void fetch_records(struct relays *rs)
{
    if (rs->nkeys == 0) {
        if (rs->n != 0)
            log_warn("relays: none announced in Redis");
        free(rs->list);
        rs->list = NULL;
        rs->n = 0;
        done(rs);
        return;
    }
    const char **argv = calloc(rs->nkeys + 1, sizeof(*argv));
    size_t *lens = calloc(rs->nkeys + 1, sizeof(*lens));
    int rc = -1;
    if (argv != NULL && lens != NULL) {
        argv[0] = "MGET";
        lens[0] = 4;
        for (size_t i = 0; i < rs->nkeys; i++) {
            argv[i + 1] = rs->keys[i];
            lens[i + 1] = strlen(rs->keys[i]);
        }
        rc = redis_commandv(rs->r, on_mget, rs, (int)rs->nkeys + 1, argv, lens);
    }
    free(argv);
    free(lens);
    if (rc == -1)
        done(rs);
}

static void scan_from(struct relays *rs, const char *cursor);

static void on_scan(const struct redis_reply *reply, const char *err, void *arg)
{
    struct relays *rs = arg;
    if (err != NULL || redis_reply_type(reply) != REDIS_R_ARRAY || redis_reply_len(reply) != 2) {
        log_debug("relays: SCAN: %s", err ? err : "unexpected reply");
        done(rs);
        return;
    }
    size_t clen;
    const char *cursor = redis_reply_str(redis_reply_at(reply, 0), &clen);
    const struct redis_reply *keys = redis_reply_at(reply, 1);
    for (size_t i = 0; i < redis_reply_len(keys) && rs->nkeys < MAX_RELAYS; i++) {
        size_t len;
        const char *k = redis_reply_str(redis_reply_at(keys, i), &len);
        char **more = realloc(rs->keys, (rs->nkeys + 1) * sizeof(*more));
        if (k == NULL || more == NULL)
            continue;
        rs->keys = more;
        if ((rs->keys[rs->nkeys] = strndup(k, len)) != NULL)
            rs->nkeys++;
    }
    char cur[32];
    snprintf(cur, sizeof(cur), "%.*s", (int)(clen < 31 ? clen : 31), cursor ? cursor : "0");
    if (strcmp(cur, "0") == 0 || ++rs->rounds >= SCAN_ROUNDS)
        fetch_records(rs);
    else
        scan_from(rs, cur);
}

static void scan_from(struct relays *rs, const char *cursor)
{
    if (redis_command(rs->r, on_scan, rs, "SCAN %s MATCH sluice:relay:* COUNT 100", cursor) == -1)
        done(rs);
}

void relays_refresh(struct relays *rs)
{
    if (rs->fixed[0] || rs->busy || !redis_is_up(rs->r))
        return;
    rs->busy = true;
    rs->rounds = 0;
    scan_from(rs, "0");
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    relays_refresh(arg);
}

struct relays *relays_new(struct event_base *base, struct redis *r, const char *fixed,
                          int64_t refresh_ms)
{
    struct relays *rs = calloc(1, sizeof(*rs));
    if (rs == NULL)
        return NULL;
    rs->r = r;
    rs->refresh_ms = refresh_ms;
    snprintf(rs->fixed, sizeof(rs->fixed), "%s", fixed ? fixed : "");
    if (rs->fixed[0] == '\0') {
        rs->timer = event_new(base, -1, EV_PERSIST, on_timer, rs);
        if (rs->timer == NULL) {
            free(rs);
            return NULL;
        }
        struct timeval tv = clock_tv_ms(refresh_ms);
        evtimer_add(rs->timer, &tv);
        relays_refresh(rs);
    }
    return rs;
}

void relays_free(struct relays *rs)
{
    if (rs == NULL)
        return;
    if (rs->timer)
        event_free(rs->timer);
    free_keys(rs);
    free(rs->list);
    free(rs);
}

/* Callbacks still pending when Redis is freed run with "cancelled" and touch
 * <rs>: free the Redis connection first (ingest.c does). */

int relays_pick(struct relays *rs, const char *avoid, struct relay_choice *out)
{
    if (rs->fixed[0]) {
        out->id[0] = '\0';
        snprintf(out->addr, sizeof(out->addr), "%s", rs->fixed);
        return 0;
    }
    struct relay *best = NULL;
    for (size_t i = 0; i < rs->n; i++) {
        struct relay *r = &rs->list[i];
        bool avoided = avoid && avoid[0] && strcmp(r->c.id, avoid) == 0 && rs->n > 1;
        if (!avoided && (best == NULL || r->streams < best->streams))
            best = r;
    }
    if (best == NULL)
        return -1;
    best->streams++;
    *out = best->c;
    return 0;
}

size_t relays_count(const struct relays *rs)
{
    return rs->fixed[0] ? 1 : rs->n;
}
