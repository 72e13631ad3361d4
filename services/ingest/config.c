/* sluice-ingest's options: one table (see config.h for how each is read). */
#include "ingest.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "sluice/net.h"

#define OPT(field) offsetof(struct ingest_config, field)

const struct config_opt ingest_opts[] = {
    { "srt-listen", CONF_STR, OPT(srt_listen), "0.0.0.0:9999", 1, 0,
      "SRT listen address (UDP)" },
    { "admin-listen", CONF_STR, OPT(admin_listen), "0.0.0.0:9101", 1, 0,
      "admin port (/metrics, /healthz, /readyz)" },
    { "api-url", CONF_STR, OPT(api_url), "http://127.0.0.1:8000", 1, 0,
      "sluice-api, as http://host:port (the authtable and authorize endpoints)" },
    { "internal-token", CONF_SECRET, OPT(internal_token), NULL, 0, 0,
      "the api's service token, at least 32 bytes (required)" },
    { "relay", CONF_STR, OPT(relay), "", 0, 0,
      "publish to this relay (host:port) instead of picking one from sluice:relay:*" },
    { "takeover", CONF_BOOL, OPT(takeover), "true", 0, 0,
      "a new publisher with a valid key replaces the live one; off: it is refused" },
    { "playback", CONF_BOOL, OPT(playback), "true", 0, 0,
      "serve viewers over SRT (m=request); off: they are refused with 1501" },
    { "srt-latency", CONF_MS, OPT(srt_latency_ms), "120ms", 20, 10000,
      "SRT latency (receive and peer); the larger of ours and the caller's applies" },
    { "srt-payload-size", CONF_INT, OPT(srt_payload_size), "1316", 188, 1456,
      "SRT payload size in bytes (1316 = 7 TS packets)" },
    { "srt-rcvbuf", CONF_BYTES, OPT(srt_rcvbuf), "0", 0, 1024LL * 1024 * 1024,
      "libsrt's receive buffer per connection; 0 = libsrt's default" },
    { "srt-udp-rcvbuf", CONF_BYTES, OPT(srt_udp_rcvbuf), "0", 0, 1024LL * 1024 * 1024,
      "the UDP socket's receive buffer; 0 = libsrt's default" },
    { "srt-peer-idle-timeout", CONF_MS, OPT(srt_peer_idle_ms), "5s", 1000, 600000,
      "a connection silent this long is lost" },
    { "srt-max-connections", CONF_INT, OPT(srt_max_connections), "1000", 1, 100000,
      "beyond, handshakes are refused with 1402" },
    { "srt-batch", CONF_MS, OPT(srt_batch_ms), "10ms", 1, 1000,
      "how often the SRT thread hands what it read to the event loop" },
    { "srt-stats-interval", CONF_MS, OPT(srt_stats_ms), "5s", 100, 3600000,
      "how often libsrt's per-connection statistics are read" },
    { "authtable-refresh", CONF_MS, OPT(authtable_refresh_ms), "5m", 1000, 86400000,
      "full reload of the authorization table (events keep it current between)" },
    { "api-timeout", CONF_MS, OPT(api_timeout_ms), "5s", 100, 600000,
      "deadline of an authtable load" },
    { "authorize-timeout", CONF_MS, OPT(authorize_timeout_ms), "800ms", 50, 10000,
      "deadline of a session's authorization; past it the connection is closed" },
    { "lease-ttl", CONF_MS, OPT(lease_ttl_ms), "10s", 300, 600000,
      "TTL of sluice:lease:publish:<name>, renewed every third of it" },
    { "relay-refresh", CONF_MS, OPT(relay_refresh_ms), "2s", 100, 600000,
      "how often sluice:relay:* is read" },
    { "relay-connect-timeout", CONF_MS, OPT(relay_connect_timeout_ms), "3s", 100, 600000,
      "connecting to a relay, HELLO and ACCEPT included" },
    { "relay-backoff-max", CONF_MS, OPT(relay_backoff_max_ms), "5s", 200, 600000,
      "longest wait between attempts at a relay (from 200ms, doubling)" },
    { "relay-buffer", CONF_BYTES, OPT(relay_buffer), "8M", 256 * 1024, 1024LL * 1024 * 1024,
      "per stream: unsent bytes before dropping to the next keyframe; also the pre-roll" },
    { "auth-buffer", CONF_BYTES, OPT(auth_buffer), "1M", 0, 64 * 1024 * 1024,
      "per connection: bytes held while a session id is being authorized" },
    { "viewer-wait", CONF_MS, OPT(viewer_wait_ms), "30s", 0, 3600000,
      "how long a viewer waits for its stream: to go live, or to come back after its "
      "relay went away; then it is disconnected" },
    { "viewer-buffer", CONF_BYTES, OPT(viewer_buffer), "4M", 64 * 1024, 1024LL * 1024 * 1024,
      "per viewer: bytes sent and not yet acknowledged before dropping to the next keyframe" },
    { NULL },
};

int ingest_config_check(const struct ingest_config *cfg, char **err)
{
    char host[256];
    int port;
    const char *msg = NULL;
    if (cfg->internal_token == NULL || strlen(cfg->internal_token) < 32)
        msg = "internal-token: set SLUICE_INTERNAL_TOKEN (or SLUICE_INTERNAL_TOKEN_FILE) to "
              "the api's service token (at least 32 bytes)";
    else if (strlen(cfg->internal_token) > 512 || strpbrk(cfg->internal_token, "\r\n"))
        msg = "internal-token: at most 512 bytes, on one line";
    else if (net_split_hostport(cfg->srt_listen, host, sizeof(host), &port) == -1)
        msg = "srt-listen: want host:port";
    else if (strncmp(cfg->api_url, "http://", 7) != 0 || strchr(cfg->api_url + 7, '/'))
        msg = "api-url: want http://host:port (no path)";
    else if (cfg->relay[0] && (net_split_hostport(cfg->relay, host, sizeof(host), &port) == -1 ||
                               port == 0))
        msg = "relay: want host:port";
    if (msg == NULL)
        return 0;
    *err = strdup(msg);
    return -1;
}
