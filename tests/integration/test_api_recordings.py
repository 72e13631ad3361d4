"""sluice-api: the recordings index. Recorders register recordings with an
idempotent PUT (service token); users list, read and delete them; a delete
publishes recording.deleted before its reply and removes sluice:vod:<id>."""
import json

import psycopg2
import pytest

from api_fixtures import INTERNAL_TOKEN, api, api_factory, assert_error, pending_event
from conftest import wait_for

HOLDER = "http://10.0.0.6:8084"


def rec(stream="cam1", started="2026-11-21T10:00:00.000Z", **extra):
    body = {"stream": stream, "started_at": started, "holder_url": HOLDER}
    body.update(extra)
    return body


def put(api, rid, body, token=INTERNAL_TOKEN):
    return api.call("PUT", f"/internal/v1/recordings/{rid}", token=token, json_body=body)


def rows(dsn, rid):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM recordings WHERE id = %s", (rid,))
        return cur.fetchone()[0]


@pytest.fixture
def events(api, redis_server):
    ps = redis_server.client().pubsub(ignore_subscribe_messages=True)
    ps.subscribe("sluice:events")
    assert ps.get_message(timeout=2) is None
    yield ps
    ps.close()


def test_put_twice_makes_one_row(api, postgres_db):
    rid = "cam1-20261121T100000Z"
    r = put(api, rid, rec())
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["id"] == rid and first["stream"] == "cam1" and first["ended_at"] is None
    assert first["started_at"] == "2026-11-21T10:00:00.000Z"
    assert first["bytes"] == 0 and first["segments"] == 0 and first["duration_ms"] == 0
    assert first["holder_url"] == HOLDER
    assert first["playback_url"] == f"http://127.0.0.1:8081/vod/{rid}/index.m3u8"
    # the same again: still one row, 200
    r = put(api, rid, rec())
    assert r.status_code == 200, r.text
    assert rows(postgres_db, rid) == 1
    # progress, then the end (times with an offset are stored in UTC)
    r = put(api, rid, rec(duration_ms=60000, bytes=12345678, segments=30))
    assert r.status_code == 200 and r.json()["bytes"] == 12345678
    r = put(api, rid, rec(ended_at="2026-11-21T12:00:00.250+01:00", duration_ms=3600250,
                          bytes=2**40, segments=1800, holder_url="http://recorder-2:8084"))
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["ended_at"] == "2026-11-21T11:00:00.250Z" and done["bytes"] == 2**40
    assert done["holder_url"] == "http://recorder-2:8084"
    assert done["created_at"] == first["created_at"] and done["updated_at"] >= first["updated_at"]
    assert rows(postgres_db, rid) == 1
    got = api.call("GET", f"/v1/recordings/{rid}", token=api.admin)
    assert got.status_code == 200 and got.json() == done
    # the recorder's PUTs are service calls, not admin actions: no audit rows
    audit = api.call("GET", "/v1/audit?target=" + rid, token=api.admin).json()
    assert audit["entries"] == []


def test_put_for_another_stream_is_refused(api, postgres_db):
    assert put(api, "r1", rec("cam1")).status_code == 201
    body = assert_error(put(api, "r1", rec("cam2", bytes=5)), 409, "conflict")
    assert "cam1" in body["message"]
    got = api.call("GET", "/v1/recordings/r1", token=api.admin).json()
    assert got["stream"] == "cam1" and got["bytes"] == 0
    assert rows(postgres_db, "r1") == 1


def test_put_refusals(api):
    assert_error(put(api, "r1", rec(), token=None), 401, "unauthorized")
    assert_error(put(api, "r1", rec(), token="wrong-token-" + "x" * 40), 401)
    assert_error(put(api, "r1", rec(), token=api.admin), 401)   # a user token is not one
    for bad in ("a%20b", "x" * 65, "a.b", "%00", "..%2F"):
        r = put(api, bad, rec())
        assert r.status_code in (400, 404), (bad, r.text)
        assert_error(r, r.status_code)
    bodies = [
        {"stream": "cam1", "holder_url": HOLDER},                               # no start
        rec(stream="bad name"), rec(stream=5), rec(stream=None),
        rec(started="now"), rec(started="2026-02-30T00:00:00Z"), rec(started=1795000000),
        rec(ended_at="epoch"), rec(ended_at="2026-11-21T09:00:00Z"),           # before start
        rec(bytes=-1), rec(bytes="12"), rec(bytes=1.5), rec(segments=2**31),
        rec(duration_ms=True), rec(holder_url="https://x:1"), rec(holder_url="http://x/y"),
        rec(holder_url=None), rec(id="other"), rec(deleted_at=None),
    ]
    for body in bodies:
        assert_error(put(api, "r1", body), 400, "bad_request")
    for raw in (b"{", b"[]", b"null", b'{"stream":"a","stream":"b"}'):
        r = api.call("PUT", "/internal/v1/recordings/r1", token=INTERNAL_TOKEN, data=raw,
                     headers={"Content-Type": "application/json"})
        assert_error(r, 400)
    assert_error(api.call("GET", "/v1/recordings/r1", token=api.admin), 404)
    assert_error(api.call("GET", "/internal/v1/recordings/r1", token=INTERNAL_TOKEN), 405)


def test_injection_strings(api, postgres_db):
    for s in ("'; DROP TABLE recordings; --", "x' OR '1'='1", "$1", "\\'"):
        for body in (rec(stream=s), rec(started=s), rec(ended_at=s), rec(holder_url=s)):
            assert_error(put(api, "r1", body), 400)
        r = api.call("GET", "/v1/recordings", token=api.admin, params={"stream": s})
        assert_error(r, 400)
        r = api.call("GET", "/v1/recordings", token=api.admin, params={"after": s})
        assert_error(r, 400)
    with psycopg2.connect(postgres_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM recordings")
        assert cur.fetchone()[0] == 0


def test_list_newest_first_filtered_and_paged(api):
    for i in range(5):
        put(api, f"a{i}", rec("cam1", started=f"2026-11-21T10:0{i}:00Z"))
    put(api, "b0", rec("cam2", started="2026-11-21T10:02:00Z"))
    lst = api.call("GET", "/v1/recordings", token=api.admin).json()
    assert [x["id"] for x in lst["recordings"]] == ["a4", "a3", "b0", "a2", "a1", "a0"]
    assert lst["next"] is None
    cam1 = api.call("GET", "/v1/recordings?stream=cam1", token=api.admin).json()
    assert [x["id"] for x in cam1["recordings"]] == ["a4", "a3", "a2", "a1", "a0"]
    page = api.call("GET", "/v1/recordings?limit=2", token=api.admin).json()
    assert [x["id"] for x in page["recordings"]] == ["a4", "a3"] and page["next"] == "a3"
    page = api.call(f"GET", f"/v1/recordings?limit=2&after={page['next']}",
                    token=api.admin).json()
    assert [x["id"] for x in page["recordings"]] == ["b0", "a2"]
    page = api.call(f"GET", f"/v1/recordings?limit=2&after={page['next']}",
                    token=api.admin).json()
    assert [x["id"] for x in page["recordings"]] == ["a1", "a0"]
    assert api.call("GET", "/v1/recordings?stream=nothing", token=api.admin).json() == {
        "recordings": [], "next": None}
    for bad in ("limit=0", "limit=1001", "limit=1000000", "limit=-1", "limit=ten",
                "stream=a%20b", "stream=" + "x" * 65, "after=a/b"):
        assert_error(api.call("GET", f"/v1/recordings?{bad}", token=api.admin), 400)
    assert_error(api.call("GET", "/v1/recordings"), 401)


def test_publishers_see_their_streams_recordings(api):
    api.create_user("alice")
    alice = api.login("alice", "password-1")
    api.create_stream("alices", token=alice)
    api.create_stream("admins")
    put(api, "ra", rec("alices"))
    put(api, "rb", rec("admins"))
    put(api, "rc", rec("nostream"))
    mine = api.call("GET", "/v1/recordings", token=alice).json()["recordings"]
    assert [x["id"] for x in mine] == ["ra"]
    assert "holder_url" not in mine[0] and mine[0]["playback_url"].endswith("/vod/ra/index.m3u8")
    assert_error(api.call("GET", "/v1/recordings/rb", token=alice), 404)
    assert_error(api.call("GET", "/v1/recordings/rc", token=alice), 404)
    assert_error(api.call("DELETE", "/v1/recordings/rb", token=alice), 404)
    assert api.call("GET", "/v1/recordings?stream=admins", token=alice).json()["recordings"] == []
    # an admin sees all, the recorder's address included
    every = api.call("GET", "/v1/recordings", token=api.admin).json()["recordings"]
    assert sorted(x["id"] for x in every) == ["ra", "rb", "rc"]
    assert all(x["holder_url"] == HOLDER for x in every)
    assert api.call("DELETE", "/v1/recordings/ra", token=alice).status_code == 204


def test_delete_publishes_before_replying(api, events, redis_server):
    rd = redis_server.client()
    put(api, "r1", rec("cam1"))
    rd.set("sluice:vod:r1", json.dumps({"url": HOLDER, "stream": "cam1"}))
    r = api.call("DELETE", "/v1/recordings/r1", token=api.admin)
    assert r.status_code == 204 and r.content == b""
    ev = pending_event(events)
    assert ev["type"] == "recording.deleted" and ev["id"] == "r1" and ev["stream"] == "cam1"
    assert set(ev) == {"type", "id", "stream", "at"}
    assert rd.get("sluice:vod:r1") is None
    assert_error(api.call("GET", "/v1/recordings/r1", token=api.admin), 404)
    assert api.call("GET", "/v1/recordings", token=api.admin).json()["recordings"] == []
    assert_error(api.call("DELETE", "/v1/recordings/r1", token=api.admin), 404)
    # a recorder that missed the event learns it from its next PUT
    assert_error(put(api, "r1", rec("cam1")), 410, "gone")
    audit = api.call("GET", "/v1/audit?action=recording.deleted", token=api.admin).json()
    assert [(e["target"], e["details"]["stream"]) for e in audit["entries"]] == [("r1", "cam1")]
    assert events.get_message(timeout=0.2) is None   # refusals publish nothing


def test_delete_needs_redis(api, redis_server):
    put(api, "r1", rec("cam1"))
    redis_server.stop()
    wait_for(lambda: not api.daemon.ready(), timeout=10, what="redis down in /readyz")
    assert_error(api.call("DELETE", "/v1/recordings/r1", token=api.admin), 503, "unavailable")
    # reads and registrations do not need Redis
    assert api.call("GET", "/v1/recordings/r1", token=api.admin).status_code == 200
    assert put(api, "r2", rec("cam1")).status_code == 201
    redis_server.start()
    wait_for(api.daemon.ready, timeout=15, what="redis back")
    assert api.call("DELETE", "/v1/recordings/r1", token=api.admin).status_code == 204


def test_edge_url_setting(api_factory):
    api = api_factory(SLUICE_EDGE_URL="https://live.example.com/")
    r = put(api, "r1", rec())
    assert r.json()["playback_url"] == "https://live.example.com/vod/r1/index.m3u8"
