/* Lease scripts: a key holds its holder's id with a TTL; only the holder may
 * extend or delete it. See redis.h. Scripts run with EVALSHA and fall back to
 * EVAL (which loads them) on NOSCRIPT, e.g. after a Redis restart. */
#include "redis_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sluice/log.h"

enum script { S_ACQUIRE, S_RENEW, S_RELEASE, S_TAKEOVER, S_COUNT };

/* Each returns {1} or {1, previous holder} when <holder> holds the key after
 * the call, {0, current holder} or {0} when it does not. */
static const char *const scripts[S_COUNT] = {
    [S_ACQUIRE] =
        "local v = redis.call('GET', KEYS[1])\n"
        "if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return {1} end\n"
        "if v then return {0, v} end\n"
        "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return {1}\n",
    [S_RENEW] =
        "local v = redis.call('GET', KEYS[1])\n"
        "if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return {1} end\n"
        "if v then return {0, v} end\n"
        "return {0}\n",
    [S_RELEASE] =
        "local v = redis.call('GET', KEYS[1])\n"
        "if v == ARGV[1] then redis.call('DEL', KEYS[1]) return {1} end\n"
        "if v then return {0, v} end\n"
        "return {0}\n",
    [S_TAKEOVER] =
        "local v = redis.call('GET', KEYS[1])\n"
        "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
        "if v and v ~= ARGV[1] then return {1, v} end\n"
        "return {1}\n",
};

struct lease_op {
    struct redis *r;
    enum script script;
    char *key, *holder;
    char ttl[24];
    bool reloaded;      /* already retried with EVAL after NOSCRIPT */
    redis_lease_cb cb;
    void *arg;
};

static void sha1_hex(const char *text, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(text, strlen(text), md, &len, EVP_sha1(), NULL);
    for (unsigned i = 0; i < len && i < 20; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
    out[40] = '\0';
}

static void op_free(struct lease_op *op)
{
    free(op->key);
    free(op->holder);
    free(op);
}

static int op_send(struct lease_op *op);

static void op_done(struct lease_op *op, enum lease_result res, const char *other)
{
    if (op->cb)
        op->cb(res, other, op->arg);
    op_free(op);
}

static void on_lease_reply(const struct redis_reply *reply, const char *err, void *arg)
{
    struct lease_op *op = arg;
    if (err != NULL && strncmp(err, "NOSCRIPT", 8) == 0 && !op->reloaded) {
        op->reloaded = true;
        if (op_send(op) == 0)
            return;
    }
    if (err != NULL || redis_reply_len(reply) < 1) {
        if (err && strcmp(err, "cancelled") != 0)
            log_warn("redis: lease %s: %s", op->key, err);
        op_done(op, LEASE_ERROR, NULL);
        return;
    }
    long long held = redis_reply_int(redis_reply_at(reply, 0));
    const char *other = NULL;
    char buf[256];
    if (redis_reply_len(reply) >= 2) {
        size_t len;
        const char *s = redis_reply_str(redis_reply_at(reply, 1), &len);
        if (s != NULL) {
            snprintf(buf, sizeof(buf), "%.*s", (int)len, s);
            other = buf;
        }
    }
    op_done(op, held == 1 ? LEASE_HELD : LEASE_OTHER, other);
}

static int op_send(struct lease_op *op)
{
    char sha[41];
    const char *argv[6];
    sha1_hex(scripts[op->script], sha);
    argv[0] = op->reloaded ? "EVAL" : "EVALSHA";
    argv[1] = op->reloaded ? scripts[op->script] : sha;
    argv[2] = "1";
    argv[3] = op->key;
    argv[4] = op->holder;
    argv[5] = op->ttl;
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    return redis_commandv(op->r, on_lease_reply, op, 6, argv, lens);
}

static int lease_call(struct redis *r, enum script script, const char *key,
                      const char *holder, int64_t ttl_ms, redis_lease_cb cb, void *arg)
{
    struct lease_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return -1;
    op->r = r;
    op->script = script;
    op->key = strdup(key);
    op->holder = strdup(holder);
    op->cb = cb;
    op->arg = arg;
    snprintf(op->ttl, sizeof(op->ttl), "%lld", (long long)ttl_ms);
    if (op->key == NULL || op->holder == NULL || op_send(op) == -1) {
        op_free(op);
        return -1;
    }
    return 0;
}

int redis_lease_acquire(struct redis *r, const char *key, const char *holder,
                        int64_t ttl_ms, redis_lease_cb cb, void *arg)
{
    return lease_call(r, S_ACQUIRE, key, holder, ttl_ms, cb, arg);
}

int redis_lease_renew(struct redis *r, const char *key, const char *holder,
                      int64_t ttl_ms, redis_lease_cb cb, void *arg)
{
    return lease_call(r, S_RENEW, key, holder, ttl_ms, cb, arg);
}

int redis_lease_release(struct redis *r, const char *key, const char *holder,
                        redis_lease_cb cb, void *arg)
{
    return lease_call(r, S_RELEASE, key, holder, 1, cb, arg);
}

int redis_lease_takeover(struct redis *r, const char *key, const char *holder,
                         int64_t ttl_ms, redis_lease_cb cb, void *arg)
{
    return lease_call(r, S_TAKEOVER, key, holder, ttl_ms, cb, arg);
}
