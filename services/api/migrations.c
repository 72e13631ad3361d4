/* Schema migrations: see migrations.h. */
#include "migrations.h"

#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "sluice/config.h"
#include "sluice/log.h"

/* pg_advisory_xact_lock key: "sluice" in ASCII. */
#define LOCK_KEY "126909663503205"

/* Version 1. Names and passphrases are checked here as well as in the API,
 * so that no path into the database can store what ingest would choke on.
 * auth_state.version counts changes to what ingest authorizes with; each
 * change bumps it in the same statement, and the authtable reports it. */
static const char v1_initial[] =
    "CREATE TABLE users ("
    "  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  username      text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{1,64}$'),"
    "  password_hash text NOT NULL,"
    "  role          text NOT NULL CHECK (role IN ('admin', 'publisher')),"
    "  created_at    timestamptz NOT NULL DEFAULT now()"
    ");"
    "CREATE TABLE streams ("
    "  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  name         text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_-]{1,64}$'),"
    "  title        text NOT NULL DEFAULT '',"
    "  category     text NOT NULL DEFAULT '',"
    "  owner_id     bigint NOT NULL REFERENCES users (id),"
    "  created_at   timestamptz NOT NULL DEFAULT now(),"
    "  updated_at   timestamptz NOT NULL DEFAULT now(),"
    "  disabled     boolean NOT NULL DEFAULT false,"
    "  record       boolean NOT NULL DEFAULT false,"
    "  passphrase   text CHECK (passphrase ~ '^[ -~]{10,79}$'),"
    "  auth_version bigint NOT NULL"
    ");"
    "CREATE INDEX streams_owner ON streams (owner_id);"
    "CREATE TABLE stream_keys ("
    "  key_sha256 bytea PRIMARY KEY CHECK (length(key_sha256) = 32),"
    "  stream_id  bigint NOT NULL UNIQUE REFERENCES streams (id) ON DELETE CASCADE,"
    "  created_at timestamptz NOT NULL DEFAULT now()"
    ");"
    "CREATE TABLE auth_state ("
    "  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),"
    "  version  bigint NOT NULL"
    ");"
    "INSERT INTO auth_state (version) VALUES (0);"
    "CREATE TABLE recordings ("
    "  id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),"
    "  stream      text NOT NULL,"
    "  started_at  timestamptz NOT NULL,"
    "  ended_at    timestamptz,"
    "  duration_ms bigint CHECK (duration_ms >= 0),"
    "  bytes       bigint CHECK (bytes >= 0),"
    "  segments    integer CHECK (segments >= 0),"
    "  holder_url  text,"
    "  created_at  timestamptz NOT NULL DEFAULT now(),"
    "  updated_at  timestamptz NOT NULL DEFAULT now()"
    ");"
    "CREATE INDEX recordings_stream ON recordings (stream, started_at DESC);"
    "CREATE TABLE audit_log ("
    "  id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  at       timestamptz NOT NULL DEFAULT now(),"
    "  actor_id bigint,"
    "  actor    text NOT NULL,"
    "  action   text NOT NULL,"
    "  target   text NOT NULL DEFAULT '',"
    "  client   text NOT NULL DEFAULT '',"
    "  details  jsonb"
    ");"
    "CREATE INDEX audit_log_at ON audit_log (at DESC);";

/* Version 2: what the recordings index and the audit log need.
 * - A deleted recording stays as a tombstone (deleted_at), so that a
 *   recorder re-registering it later is told it is gone (410) instead of
 *   bringing it back; lists read only live rows, through partial indexes
 *   ordered as they are paged (newest first, the id breaking ties).
 * - A recording ends after it starts.
 * - The audit log is append-only: a trigger refuses UPDATE, DELETE and
 *   TRUNCATE, so no code path of ours can rewrite history by mistake; it is
 *   filtered by actor, action or target, newest first. */
static const char v2_recordings_audit[] =
    "ALTER TABLE recordings ADD COLUMN deleted_at timestamptz;"
    "ALTER TABLE recordings ADD CONSTRAINT recordings_ends_after_start"
    "  CHECK (ended_at IS NULL OR ended_at >= started_at);"
    "DROP INDEX recordings_stream;"
    "CREATE INDEX recordings_stream ON recordings (stream, started_at DESC, id DESC)"
    "  WHERE deleted_at IS NULL;"
    "CREATE INDEX recordings_started ON recordings (started_at DESC, id DESC)"
    "  WHERE deleted_at IS NULL;"
    "CREATE INDEX audit_log_actor ON audit_log (actor, id DESC);"
    "CREATE INDEX audit_log_action ON audit_log (action, id DESC);"
    "CREATE INDEX audit_log_target ON audit_log (target, id DESC);"
    "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$"
    "  BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;"
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log"
    "  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();"
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log"
    "  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();";

const struct migration migrations[] = {
    { 1, "users, streams, keys, recordings, audit log", v1_initial },
    { 2, "recording tombstones, audit log indexes, append-only audit log",
      v2_recordings_audit },
};
const size_t migrations_count = sizeof(migrations) / sizeof(migrations[0]);

/* One run of the migrations on one connection. */
struct run {
    struct db_conn *c;
    int64_t version;     /* the schema's, as the run advances */
};

static void apply_next(struct run *r);

/* Ends the run; <ok> puts the connection in service. */
static void finish(struct run *r, bool ok)
{
    struct db_conn *c = r->c;
    free(r);
    db_conn_ready(c, ok);
}

/* A failed step: the connection is dropped, which rolls the transaction back,
 * and the pool retries after its backoff. */
static bool step_failed(struct run *r, const struct db_result *res, const char *what)
{
    if (db_status(res) == DB_OK)
        return false;
    log_error("migrations: %s failed: %s", what, db_message(res));
    finish(r, false);
    return true;
}

static void on_committed(const struct db_result *res, void *arg)
{
    struct run *r = arg;
    if (!step_failed(r, res, "commit"))
        finish(r, true);
}

static void on_recorded(const struct db_result *res, void *arg)
{
    struct run *r = arg;
    if (step_failed(r, res, "recording a migration"))
        return;
    apply_next(r);
}

static void on_applied(const struct db_result *res, void *arg)
{
    struct run *r = arg;
    const struct migration *m = &migrations[r->version];   /* index = version - 1 */
    if (step_failed(r, res, m->name))
        return;
    char version[16];
    snprintf(version, sizeof(version), "%d", m->version);
    const char *params[] = { version, m->name };
    r->version = m->version;
    log_info("migrations: applied %d (%s)", m->version, m->name);
    if (db_conn_query(r->c, "INSERT INTO sluice_migrations (version, name) VALUES ($1, $2)",
                      2, params, on_recorded, r) == -1)
        finish(r, false);
}

static void apply_next(struct run *r)
{
    int rc;
    if ((size_t)r->version < migrations_count)
        rc = db_conn_query(r->c, migrations[r->version].sql, 0, NULL, on_applied, r);
    else
        rc = db_conn_query(r->c, "COMMIT", 0, NULL, on_committed, r);
    if (rc == -1)
        finish(r, false);
}

static void on_locked(const struct db_result *res, void *arg)
{
    struct run *r = arg;
    if (step_failed(r, res, "reading the schema version"))
        return;
    const char *v = db_value(res, 0, 0);
    if (v == NULL || config_parse_int(v, 0, 1000000, &r->version) == -1) {
        log_error("migrations: unreadable schema version");
        finish(r, false);
        return;
    }
    if ((size_t)r->version > migrations_count)
        log_warn("migrations: the database is at version %lld, newer than this binary "
                 "knows (%zu); carrying on", (long long)r->version, migrations_count);
    else if ((size_t)r->version < migrations_count)
        log_info("migrations: the database is at version %lld, upgrading to %zu",
                 (long long)r->version, migrations_count);
    apply_next(r);
}

void migrations_setup(struct db_conn *c, void *arg)
{
    (void)arg;
    static const char begin[] =
        "BEGIN;"
        "SELECT pg_advisory_xact_lock(" LOCK_KEY ");"
        "CREATE TABLE IF NOT EXISTS sluice_migrations ("
        "  version    integer PRIMARY KEY,"
        "  name       text NOT NULL,"
        "  applied_at timestamptz NOT NULL DEFAULT now()"
        ");"
        "SELECT coalesce(max(version), 0) FROM sluice_migrations";
    struct run *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        db_conn_ready(c, false);
        return;
    }
    r->c = c;
    if (db_conn_query(c, begin, 0, NULL, on_locked, r) == -1)
        finish(r, false);
}
