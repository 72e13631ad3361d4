"""sluice-api and PostgreSQL: outages, recovery, a bounded queue, and replicas
migrating one database together."""
import threading
import time

import psycopg2

from api_fixtures import ADMIN_PASSWORD, ADMIN_USER, api_factory, assert_error, start_api
from conftest import wait_for
from migrations_count import MIGRATIONS


def readyz(api):
    import requests
    return requests.get(api.daemon.admin_url("/readyz"), timeout=2).json()


def test_postgres_outage_and_recovery(daemons, private_postgres, redis_server):
    api = start_api(daemons, private_postgres.dsn(), redis_server.url)
    key = api.create_stream("cam1")["key"]
    token = api.admin
    private_postgres.stop()
    wait_for(lambda: not api.daemon.ready(), timeout=10, what="postgres down in /readyz")
    assert readyz(api)["checks"]["postgres"] != "ok"
    t = time.monotonic()
    for method, path, body in (("GET", "/v1/streams", None),
                               ("POST", "/v1/streams", {"name": "cam2"}),
                               ("GET", "/v1/users", None)):
        assert_error(api.call(method, path, token=token, json_body=body), 503, "unavailable")
    assert_error(api.call("POST", "/v1/auth/login",
                          json_body={"username": ADMIN_USER, "password": ADMIN_PASSWORD}),
                 503)
    assert_error(api.internal("POST", "/internal/v1/authorize",
                              {"protocol": "srt", "action": "publish", "key": key}), 503)
    assert_error(api.internal("GET", "/internal/v1/authtable"), 503)
    assert time.monotonic() - t < 2, "a down database must be refused at once"
    assert api.daemon.proc.poll() is None
    private_postgres.start()
    wait_for(api.daemon.ready, timeout=10, what="recovery")
    assert api.call("GET", "/v1/streams", token=token).status_code == 200
    assert api.authorize(key, "cam1")["allow"] is True


def test_starts_before_postgres(daemons, private_postgres, redis_server):
    private_postgres.stop()
    api = start_api(daemons, private_postgres.dsn(), redis_server.url, wait_ready=False)
    wait_for(api.daemon.healthy, timeout=10, what="healthz")
    assert not api.daemon.ready()
    assert_error(api.call("POST", "/v1/auth/login",
                          json_body={"username": ADMIN_USER, "password": ADMIN_PASSWORD}), 503)
    private_postgres.start()
    wait_for(api.daemon.ready, timeout=10, what="ready once postgres is up")
    wait_for(lambda: api.call("POST", "/v1/auth/login", json_body={
        "username": ADMIN_USER, "password": ADMIN_PASSWORD}).status_code == 200,
        timeout=10, what="the admin created late")


def test_queue_is_bounded_and_queries_time_out(api_factory, postgres_db):
    api = api_factory(SLUICE_DB_CONNECTIONS=1, SLUICE_DB_QUEUE=2, SLUICE_DB_TIMEOUT="1s")
    token = api.admin
    blocker = psycopg2.connect(postgres_db)
    cur = blocker.cursor()
    cur.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")   # every auth reads users
    results = []

    def call():
        t = time.monotonic()
        r = api.call("GET", "/v1/streams", token=token)
        results.append((r.status_code, time.monotonic() - t, r.json()))
    threads = [threading.Thread(target=call) for _ in range(5)]
    for th in threads:
        th.start()
        time.sleep(0.05)
    for th in threads:
        th.join()
    blocker.rollback()
    blocker.close()
    assert all(status == 503 for status, _, _ in results), results
    assert all(body["error"] == "unavailable" for _, _, body in results)
    fast = [elapsed for _, elapsed, _ in results if elapsed < 0.5]
    slow = [elapsed for _, elapsed, _ in results if elapsed >= 0.5]
    assert len(fast) == 2 and len(slow) == 3, results   # 1 running + 2 queued timed out
    # the connection that timed out was dropped and comes back by itself
    wait_for(lambda: api.call("GET", "/v1/streams", token=token).status_code == 200,
             timeout=10, what="recovery after timeouts")


def test_two_replicas_migrate_a_new_database_once(daemons, postgres_db, redis_server):
    a = start_api(daemons, postgres_db, redis_server.url, wait_ready=False)
    b = start_api(daemons, postgres_db, redis_server.url, wait_ready=False)
    for api in (a, b):
        wait_for(api.daemon.ready, timeout=15, what="both ready")
    with psycopg2.connect(postgres_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT version FROM sluice_migrations ORDER BY version")
        assert [v for (v,) in cur.fetchall()] == list(range(1, MIGRATIONS + 1))
        cur.execute("SELECT count(*) FROM users WHERE username = %s", (ADMIN_USER,))
        assert cur.fetchone()[0] == 1
    applied = a.daemon.log_text().count("applied 1 ") + b.daemon.log_text().count("applied 1 ")
    assert applied == 1
    # both serve the same data
    wait_for(lambda: a.call("POST", "/v1/auth/login", json_body={
        "username": ADMIN_USER, "password": ADMIN_PASSWORD}).status_code == 200, timeout=10)
    a.create_stream("cam1", token=a.admin)
    assert b.call("GET", "/v1/streams/cam1", token=a.admin).status_code == 200


def test_restart_keeps_the_schema(daemons, postgres_db, redis_server):
    a = start_api(daemons, postgres_db, redis_server.url)
    key = a.create_stream("cam1")["key"]
    a.daemon.stop()
    b = start_api(daemons, postgres_db, redis_server.url)
    assert "applied" not in b.daemon.log_text()
    assert b.authorize(key, "cam1")["allow"] is True


def test_connects_by_name_and_by_socket(daemons, postgres_cluster, redis_server):
    """A host name goes through evdns (libpq would block resolving it); a
    socket directory needs no resolving."""
    import urllib.parse
    db = postgres_cluster.create_database().rsplit("/", 1)[1]
    by_name = f"postgresql://postgres@localhost:{postgres_cluster.port}/{db}"
    sock = urllib.parse.quote(str(postgres_cluster.dir), safe="")
    by_socket = f"postgresql://postgres@/{db}?host={sock}&port={postgres_cluster.port}"
    for dsn in (by_name, by_socket):
        api = start_api(daemons, dsn, redis_server.url)
        assert api.call("GET", "/v1/streams", token=api.admin).status_code == 200
        api.daemon.stop()


def test_unusable_database_url_is_refused(daemons, redis_server):
    from test_api_auth import run_refused
    from api_fixtures import INTERNAL_TOKEN, JWT_SECRET
    for url in ("postgresql://a,b/db", "not a url = = =", "postgresql://[::1/x"):
        code, out = run_refused({"SLUICE_JWT_SECRET": JWT_SECRET,
                                 "SLUICE_INTERNAL_TOKEN": INTERNAL_TOKEN,
                                 "SLUICE_DATABASE_URL": url})
        assert code == 1, (url, out)
        assert "database-url" in out, out


def test_logins_wait_for_the_first_admin(api_factory, postgres_db):
    """Until the configured admin's row is written, a login cannot find it:
    the api answers 503 (try again), never 401, and is not ready. The test
    holds the insert back with a table lock that still lets SELECTs through."""
    api_factory()                                   # the schema, and a first admin
    db = psycopg2.connect(postgres_db)
    db.cursor().execute("LOCK TABLE users IN SHARE MODE")   # INSERT waits; SELECT does not
    second = api_factory(wait_ready=False, SLUICE_ADMIN_USER="root2", SLUICE_DB_TIMEOUT="60s")
    try:
        wait_for(lambda: (readyz(second).get("checks") or {}).get("postgres") == "ok",
                 timeout=15, what="the second api on the database")
        checks = readyz(second)["checks"]
        assert checks["admin"] == "being created" and not second.daemon.ready()
        login = {"username": "root2", "password": ADMIN_PASSWORD}
        r = second.call("POST", "/v1/auth/login", json_body=login)
        assert_error(r, 503, "unavailable")
        assert r.headers.get("Retry-After")
        # (a 401 here would also have counted against the login throttle)
    finally:
        db.rollback()                               # the insert goes through
        db.close()
    wait_for(second.daemon.ready, timeout=15, what="ready once the admin exists")
    assert readyz(second)["checks"]["admin"] == "ok"
    r = second.call("POST", "/v1/auth/login", json_body=login)
    assert r.status_code == 200 and r.json()["user"]["username"] == "root2"
