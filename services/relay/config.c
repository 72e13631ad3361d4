/* sluice-relay's options: one table (see config.h for how each is read). */
#include "relay.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "subscriber.h"

#define OPT(field) offsetof(struct relay_config, field)
#define QUEUE_SLACK (64 * 1024)   /* room in a queue beyond a whole GOP burst */

const struct config_opt relay_opts[] = {
    { "listen", CONF_STR, OPT(listen), "0.0.0.0:7700", 1, 0, "SLP listen address, host:port" },
    { "admin-listen", CONF_STR, OPT(admin_listen), "0.0.0.0:9102", 1, 0,
      "admin port (/metrics, /healthz, /readyz, /v1/streams)" },
    { "advertise", CONF_STR, OPT(advertise), "", 0, 0,
      "the SLP address others dial, written to Redis (default: listen, with a wildcard "
      "host replaced by the host name)" },
    { "heartbeat", CONF_MS, OPT(heartbeat_ms), "2s", 100, 60000,
      "Redis records are rewritten this often, with a TTL of two heartbeats" },
    { "max-queue", CONF_BYTES, OPT(max_queue), "16M", 256 * 1024, 1024LL * 1024 * 1024,
      "bytes a subscriber may have waiting; beyond, frames are dropped to the next keyframe" },
    { "gop-cache-max", CONF_BYTES, OPT(gop_cache_max), "8M", 0, 512LL * 1024 * 1024,
      "bytes of GOP cache per stream; a longer GOP is not cached (0: no cache)" },
    { "slow-timeout", CONF_MS, OPT(slow_timeout_ms), "10s", 500, 600000,
      "a subscriber whose queue has not emptied for this long is cut off (too_slow)" },
    { "publisher-grace", CONF_MS, OPT(publisher_grace_ms), "10s", 0, 600000,
      "how long subscribers wait for a publisher lost without EOS to come back" },
    { "known-publisher-ttl", CONF_MS, OPT(known_publisher_ttl_ms), "1m", 0, 86400000,
      "while Redis is down, a publisher id last seen here this recently may publish its "
      "stream again (0: only within publisher-grace)" },
    { "max-wait", CONF_MS, OPT(max_wait_ms), "5m", 0, 3600000,
      "cap on how long a subscriber may wait for a stream to go live" },
    { "handshake-timeout", CONF_MS, OPT(handshake_timeout_ms), "10s", 100, 600000,
      "HELLO, then PUBLISH or SUBSCRIBE, must each come within this" },
    { "idle-timeout", CONF_MS, OPT(idle_timeout_ms), "20s", 6000, 3600000,
      "close a connection that sent nothing (not even PING) for this long" },
    { "max-connections", CONF_INT, OPT(max_connections), "4096", 1, 1000000,
      "SLP connections; beyond, new ones get ERROR overloaded" },
    { NULL },
};

int relay_config_check(const struct relay_config *cfg, char **err)
{
    if (cfg->gop_cache_max + CONTROL_RESERVE + QUEUE_SLACK > cfg->max_queue) {
        if (asprintf(err, "gop-cache-max (%lld) must leave %d bytes of max-queue (%lld): a "
                     "new subscriber gets the whole cached GOP at once",
                     (long long)cfg->gop_cache_max, CONTROL_RESERVE + QUEUE_SLACK,
                     (long long)cfg->max_queue) == -1)
            *err = NULL;
        return -1;
    }
    return 0;
}
