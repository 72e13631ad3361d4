"""The fixtures themselves: a real Redis and a real PostgreSQL come up on free
ports, answer, and can be stopped and started again (outage tests rely on it)."""
import psycopg2


def test_redis_fixture_restarts_on_same_port(redis_server):
    r = redis_server.client()
    r.set("sluice:test", "1")
    assert r.get("sluice:test") == "1"
    port = redis_server.port
    redis_server.stop()
    redis_server.start()
    assert redis_server.port == port
    assert redis_server.client().get("sluice:test") is None  # no persistence


def test_postgres_databases_are_fresh(postgres_cluster):
    a, b = postgres_cluster.create_database(), postgres_cluster.create_database()
    assert a != b
    with psycopg2.connect(a) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE x (v int)")
    with psycopg2.connect(b) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'x'")
        assert cur.fetchone()[0] == 0


def test_private_postgres_stops_and_starts(private_postgres):
    private_postgres.stop()
    try:
        psycopg2.connect(private_postgres.dsn(), connect_timeout=1)
        raise AssertionError("connected to a stopped cluster")
    except psycopg2.OperationalError:
        pass
    private_postgres.start()
    with psycopg2.connect(private_postgres.dsn()) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
