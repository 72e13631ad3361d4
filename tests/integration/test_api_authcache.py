"""sluice-api: authorize decides from the authtable in memory, kept current by
sluice:events, and never from a table it could know to be stale: changes are
refused or allowed at once, on this replica and on another; while Redis is
down (events would be lost) decisions come from PostgreSQL."""
import psycopg2

from api_fixtures import api, api_factory, pending_event, start_api
from conftest import wait_for


def source(api, where):
    return api.daemon.metrics().get(
        f'sluice_api_authorize_source_total{{source="{where}"}}', 0)


def memory_up(api):
    return api.daemon.metrics().get("sluice_api_authcache_up") == 1


def sql(dsn, statement, args=None):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(statement, args)


def test_decides_from_memory(api):
    wait_for(lambda: memory_up(api), timeout=10, what="the authtable in memory")
    key = api.create_stream("cam1")["key"]
    before = source(api, "memory")
    assert api.authorize(key, "cam1")["allow"] is True
    assert api.authorize(key)["allow"] is True
    new = api.call("POST", "/v1/streams/cam1/key", token=api.admin).json()["key"]
    assert api.authorize(key, "cam1")["code"] == 1401       # at once
    assert api.authorize(key)["code"] == 1401
    assert api.authorize(new, "cam1")["allow"] is True
    assert api.authorize(new, "nope")["code"] == 1404
    api.call("PATCH", "/v1/streams/cam1", token=api.admin, json_body={"disabled": True})
    assert api.authorize(new, "cam1")["code"] == 1403
    api.call("DELETE", "/v1/streams/cam1", token=api.admin)
    assert api.authorize(new, "cam1")["code"] == 1404
    assert api.authorize(new)["code"] == 1401
    assert source(api, "memory") == before + 9
    assert source(api, "database") == 0


def soon(predicate):
    """At once in practice: Redis writes the event to the other replica's
    subscriber in the same pass as the PUBLISH reply, before the change is
    answered; a loaded machine may preempt Redis between the two writes, so
    allow 200 ms."""
    return wait_for(predicate, timeout=0.2, interval=0.005, what="the event applied")


def test_two_replicas(api_factory, daemons, postgres_db, redis_server):
    """A change answered by one replica is applied by the other before its
    next decision."""
    a = api_factory()
    b = start_api(daemons, postgres_db, redis_server.url)
    for x in (a, b):
        wait_for(lambda: memory_up(x), timeout=10, what="the authtable in memory")
    key = a.create_stream("cam1", passphrase="0123456789")["key"]
    assert b.authorize(key, "cam1") == {"allow": True, "stream": "cam1",
                                        "passphrase": "0123456789", "mode": "publish",
                                        "via": "key"}
    for _ in range(20):
        new = a.call("POST", "/v1/streams/cam1/key", token=a.admin).json()["key"]
        soon(lambda: b.authorize(key, "cam1").get("code") == 1401)
        assert b.authorize(key)["code"] == 1401
        assert b.authorize(new, "cam1")["allow"] is True
        key = new
    b.call("PATCH", "/v1/streams/cam1", token=b.admin,
           json_body={"disabled": True, "passphrase": None})
    soon(lambda: a.authorize(key, "cam1").get("code") == 1403)
    b.call("PATCH", "/v1/streams/cam1", token=b.admin, json_body={"disabled": False})
    soon(lambda: a.authorize(key, "cam1") == {"allow": True, "stream": "cam1",
                                              "passphrase": None, "mode": "publish",
                                              "via": "key"})
    a.call("DELETE", "/v1/streams/cam1", token=a.admin)
    soon(lambda: b.authorize(key, "cam1").get("code") == 1404)
    assert source(a, "database") == source(b, "database") == 0


def test_redis_down_means_postgres(api, postgres_db, redis_server):
    """While Redis is down the table is not trusted: a change it cannot have
    heard of (made behind the API's back here) is seen at once."""
    wait_for(lambda: memory_up(api), timeout=10, what="the authtable in memory")
    key = api.create_stream("cam1")["key"]
    redis_server.stop()
    wait_for(lambda: not memory_up(api), timeout=10, what="the table distrusted")
    sql(postgres_db, "UPDATE streams SET disabled = true WHERE name = 'cam1'")
    assert api.authorize(key, "cam1")["code"] == 1403
    assert source(api, "database") >= 1
    redis_server.start()
    wait_for(lambda: memory_up(api), timeout=15, what="the table reloaded")
    before = source(api, "memory")
    assert api.authorize(key, "cam1")["code"] == 1403   # reloaded after resubscribing
    assert source(api, "memory") == before + 1


def test_reload_catches_a_lost_event(api_factory, postgres_db):
    api = api_factory(SLUICE_AUTH_RELOAD="1s")
    wait_for(lambda: memory_up(api), timeout=10, what="the authtable in memory")
    key = api.create_stream("cam1")["key"]
    assert api.authorize(key, "cam1")["allow"] is True
    # a change whose event was lost (written behind the API's back)
    sql(postgres_db, "WITH v AS (UPDATE auth_state SET version = version + 1 RETURNING version)"
                     " UPDATE streams SET disabled = true, auth_version = v.version FROM v"
                     " WHERE name = 'cam1'")
    wait_for(lambda: api.authorize(key, "cam1").get("code") == 1403, timeout=5,
             what="the periodic reload")


def test_bad_events_make_it_reload(api, redis_server):
    wait_for(lambda: memory_up(api), timeout=10, what="the authtable in memory")
    key = api.create_stream("cam1")["key"]
    rd = redis_server.client()
    for msg in ("not json", "[]", '{"type": "key.rotated", "stream": "cam1"}',
                '{"type": "key.rotated", "stream": "cam1", "version": 99, "auth": {"x": 1}}',
                '{"type": "stream.start", "stream": "cam1"}'):
        rd.publish("sluice:events", msg)
    wait_for(lambda: memory_up(api), timeout=10, what="the table reloaded")
    assert api.authorize(key, "cam1")["allow"] is True
    assert api.daemon.proc.poll() is None


def test_cache_off(api_factory):
    api = api_factory(SLUICE_AUTH_CACHE="false")
    key = api.create_stream("cam1")["key"]
    assert api.authorize(key, "cam1")["allow"] is True
    api.call("POST", "/v1/streams/cam1/key", token=api.admin)
    assert api.authorize(key, "cam1")["code"] == 1401
    assert source(api, "memory") == 0 and source(api, "database") == 2
    assert not memory_up(api)


# ---- callers: the users bearer tokens name --------------------------------

def callers(api, where):
    return api.daemon.metrics().get(f'sluice_api_callers_total{{source="{where}"}}', 0)


def test_callers_from_memory(api):
    wait_for(lambda: memory_up(api), timeout=10, what="the authtable in memory")
    token = api.admin
    api.call("GET", "/v1/streams", token=token)
    before = callers(api, "memory")
    for _ in range(3):
        assert api.call("GET", "/v1/streams", token=token).status_code == 200
    assert callers(api, "memory") == before + 3


def test_deleted_user_stops_at_once_on_every_replica(api_factory, daemons, postgres_db,
                                                     redis_server):
    a = api_factory()
    b = start_api(daemons, postgres_db, redis_server.url)
    for x in (a, b):
        wait_for(lambda: memory_up(x), timeout=10, what="the authtable in memory")
    alice = a.create_user("alice", role="admin")
    token = a.login("alice", "password-1")
    for x in (a, b):   # known, and now in both replicas' memory
        assert x.call("GET", "/v1/users", token=token).status_code == 200
        assert x.call("GET", "/v1/users", token=token).status_code == 200
    ps = redis_server.client().pubsub(ignore_subscribe_messages=True)
    ps.subscribe("sluice:events")
    assert ps.get_message(timeout=2) is None
    assert a.call("DELETE", f"/v1/users/{alice['id']}", token=a.admin).status_code == 204
    ev = pending_event(ps)
    assert ev["type"] == "user.deleted" and ev["id"] == alice["id"]
    assert ev["username"] == "alice" and set(ev) == {"type", "id", "username", "at"}
    r = a.call("GET", "/v1/users", token=token)
    assert r.status_code == 401, r.text           # here: at once
    soon(lambda: b.call("GET", "/v1/users", token=token).status_code == 401)
    ps.close()


def test_deleting_a_user_needs_redis(api, redis_server, postgres_db):
    """Other replicas would not hear of it: refused, and nothing changes. And
    while Redis is down, callers come from PostgreSQL."""
    alice = api.create_user("alice")
    bob = api.create_user("bob")
    bob_token = api.login("bob", "password-1")
    token = api.admin
    assert api.call("GET", "/v1/streams", token=bob_token).status_code == 200
    redis_server.stop()
    wait_for(lambda: not memory_up(api), timeout=10, what="the caches distrusted")
    r = api.call("DELETE", f"/v1/users/{alice['id']}", token=token)
    assert r.status_code == 503 and r.json()["error"] == "unavailable"
    assert "alice" in api.call("GET", "/v1/users", token=token).text
    sql(postgres_db, "DELETE FROM users WHERE username = 'bob'")   # behind the API's back
    assert api.call("GET", "/v1/streams", token=bob_token).status_code == 401
    redis_server.start()
    wait_for(lambda: memory_up(api), timeout=15, what="the caches trusted again")
    assert api.call("DELETE", f"/v1/users/{alice['id']}", token=token).status_code == 204
