/* sluice-api's options: one table (see config.h for how each is read). */
#include "api.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "jwt_auth.h"
#include "password.h"
#include "requests.h"

#define OPT(field) offsetof(struct api_config, field)

const struct config_opt api_opts[] = {
    { "listen", CONF_STR, OPT(listen), "0.0.0.0:8000", 1, 0, "API listen address" },
    { "admin-listen", CONF_STR, OPT(admin_listen), "0.0.0.0:9100", 1, 0,
      "admin port (/metrics, /healthz, /readyz)" },
    { "database-url", CONF_SECRET, OPT(database_url),
      "postgresql://sluice@127.0.0.1:5432/sluice", 1, 0,
      "PostgreSQL, as a libpq URI or key=value string" },
    { "db-connections", CONF_INT, OPT(db_connections), "4", 1, 64,
      "PostgreSQL connections in the pool" },
    { "db-queue", CONF_INT, OPT(db_queue), "256", 1, 100000,
      "queries that may wait for a connection; beyond, 503" },
    { "db-timeout", CONF_MS, OPT(db_timeout_ms), "5s", 100, 600000,
      "deadline of a query, waiting included" },
    { "db-connect-timeout", CONF_MS, OPT(db_connect_timeout_ms), "5s", 100, 600000,
      "deadline of a connection attempt" },
    { "db-backoff-max", CONF_MS, OPT(db_backoff_max_ms), "5s", 100, 600000,
      "longest wait between reconnection attempts (from 100ms, doubling)" },
    { "jwt-secret", CONF_SECRET, OPT(jwt_secret), NULL, 0, 0,
      "HS256 key for login tokens, at least 32 bytes (required)" },
    { "jwt-ttl", CONF_MS, OPT(jwt_ttl_ms), "1h", 1000, 30LL * 86400 * 1000,
      "lifetime of a login token" },
    { "internal-token", CONF_SECRET, OPT(internal_token), NULL, 0, 0,
      "service token for /internal/, at least 32 bytes (required)" },
    { "admin-user", CONF_STR, OPT(admin_user), "", 0, 0,
      "an admin created at start-up if no user has this name" },
    { "admin-password", CONF_SECRET, OPT(admin_password), "", 0, 0,
      "that admin's password (8 bytes or more)" },
    { "password-cost", CONF_INT, OPT(password_cost), "15", PASSWORD_LN_MIN,
      PASSWORD_LN_MAX, "scrypt cost for new password hashes, as log2(N)" },
    { "hash-threads", CONF_INT, OPT(hash_threads), "2", 1, 64,
      "threads that hash passwords" },
    { "hash-queue", CONF_INT, OPT(hash_queue), "64", 1, 100000,
      "password checks that may wait for a thread; beyond, 503" },
    { "session-ttl", CONF_MS, OPT(session_ttl_ms), "5m", 1000, 86400000,
      "lifetime of a single-use session id" },
    { "login-max-failures", CONF_INT, OPT(login_max_failures), "5", 1, 16,
      "failed logins per user or address within login-window before a lockout" },
    { "login-window", CONF_MS, OPT(login_window_ms), "1m", 1000, 86400000,
      "window in which failed logins are counted" },
    { "login-lockout", CONF_MS, OPT(login_lockout_ms), "5m", 1000, 86400000,
      "how long a user or address is refused (429) after too many failures" },
    { "login-redis-wait", CONF_MS, OPT(login_redis_wait_ms), "200ms", 10, 2000,
      "longest wait for the failures shared in Redis before a login goes on with "
      "this replica's count alone" },
    { "trust-proxy", CONF_BOOL, OPT(trust_proxy), "false", 0, 0,
      "take the client address from the last X-Forwarded-For entry (behind Traefik)" },
    { "max-body", CONF_BYTES, OPT(max_body), "64k", 1024, 16 * 1024 * 1024,
      "largest request body" },
    { "edge-url", CONF_STR, OPT(edge_url), "http://127.0.0.1:8081", 1, 0,
      "the edge's public base URL, for playback URLs (<edge-url>/live/<name>/index.m3u8)" },
    { "live-public", CONF_BOOL, OPT(live_public), "true", 0, 0,
      "GET /v1/live answers callers without a token (public fields only)" },
    { "auth-cache", CONF_BOOL, OPT(auth_cache), "true", 0, 0,
      "authorize from the authtable in memory, kept current by sluice:events" },
    { "auth-reload", CONF_MS, OPT(auth_reload_ms), "1m", 1000, 86400000,
      "reload the in-memory authtable this often (catches a lost event)" },
    { NULL },
};

int api_config_check(const struct api_config *cfg, char **err)
{
    const char *msg = NULL;
    if (cfg->jwt_secret == NULL || strlen(cfg->jwt_secret) < JWT_SECRET_MIN)
        msg = "jwt-secret: set SLUICE_JWT_SECRET (or SLUICE_JWT_SECRET_FILE) to at "
              "least 32 bytes, e.g. `openssl rand -hex 32`";
    else if (cfg->internal_token == NULL || strlen(cfg->internal_token) < 32)
        msg = "internal-token: set SLUICE_INTERNAL_TOKEN (or SLUICE_INTERNAL_TOKEN_FILE) "
              "to at least 32 bytes, e.g. `openssl rand -hex 32`";
    else if (cfg->admin_user[0] && !username_valid(cfg->admin_user))
        msg = "admin-user: 1 to 64 of A-Z a-z 0-9 _ - . @";
    else if (cfg->admin_user[0] && strlen(cfg->admin_password) < PASSWORD_MIN_LEN)
        msg = "admin-password: with admin-user set, give a password of 8 bytes or more";
    else if (!cfg->admin_user[0] && cfg->admin_password[0])
        msg = "admin-password is set but admin-user is not";
    else if (strlen(cfg->admin_password) > PASSWORD_MAX_LEN)
        msg = "admin-password: at most 1024 bytes";
    else if (!base_url_valid(cfg->edge_url))
        msg = "edge-url: an http:// or https:// base URL (host, optional port and path; "
              "no query), at most 200 bytes";
    if (msg == NULL)
        return 0;
    *err = strdup(msg);
    return -1;
}
