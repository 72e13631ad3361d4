"""sluice-api: GET /v1/live, what is live. The test plays the relay: it writes
sluice:stream:<name> records exactly as docs/redis.md specifies, with a TTL,
and lets them expire."""
import json
import time

from api_fixtures import api, api_factory, assert_error
from conftest import wait_for

PUBLIC = {"name", "title", "category", "started_at", "playback_url"}
FULL = PUBLIC | {"owner", "protocol", "client", "ingest", "relay", "relay_id", "publisher"}


def record(name, started="2026-11-21T10:00:00.123Z"):
    """A relay's record, as docs/redis.md has it."""
    return json.dumps({"name": name, "relay": "10.0.0.5:7700", "relay_id": "relay-1",
                       "ingest": "ingest-1", "protocol": "srt", "client": "203.0.113.7:50123",
                       "publisher": "ingest-1/42", "started_at": started})


def go_live(rd, name, ttl_ms=60000, **kw):
    rd.set(f"sluice:stream:{name}", record(name, **kw), px=ttl_ms)


def live(api, token=None, query=""):
    r = api.call("GET", "/v1/live" + query, token=token)
    assert r.status_code == 200, r.text
    return r.json()


def names(api, token=None, query=""):
    return [s["name"] for s in live(api, token, query)["streams"]]


def test_streams_appear_and_disappear(api, redis_server):
    rd = redis_server.client()
    api.create_stream("cam1", title="Front door", category="security")
    api.create_stream("cam2", title="Back door")
    api.create_stream("cam3")
    assert live(api) == {"streams": [], "next": None}
    go_live(rd, "cam2", ttl_ms=60000)
    go_live(rd, "cam1", ttl_ms=800, started="2026-11-21T09:00:00.000Z")
    got = live(api)
    assert got["next"] is None
    assert got["streams"] == [
        {"name": "cam1", "title": "Front door", "category": "security",
         "started_at": "2026-11-21T09:00:00.000Z",
         "playback_url": "http://127.0.0.1:8081/live/cam1/index.m3u8"},
        {"name": "cam2", "title": "Back door", "category": "",
         "started_at": "2026-11-21T10:00:00.123Z",
         "playback_url": "http://127.0.0.1:8081/live/cam2/index.m3u8"}]
    # cam1's relay stops refreshing its record: it expires, and leaves the list
    wait_for(lambda: names(api) == ["cam2"], timeout=5, what="cam1 to expire")
    go_live(rd, "cam3")
    assert names(api) == ["cam2", "cam3"]
    rd.delete("sluice:stream:cam2", "sluice:stream:cam3")
    assert names(api) == []


def test_who_sees_what(api, redis_server):
    rd = redis_server.client()
    api.create_user("alice")
    alice = api.login("alice", "password-1")
    api.create_stream("alices", token=alice)
    api.create_stream("admins")
    for n in ("alices", "admins", "ghost"):     # ghost: live, but no such stream
        go_live(rd, n)
    public = live(api)["streams"]
    assert [s["name"] for s in public] == ["admins", "alices"]
    assert all(set(s) == PUBLIC for s in public)
    # a publisher: everything the public sees, and the details of its own
    mine = {s["name"]: s for s in live(api, alice)["streams"]}
    assert list(mine) == ["admins", "alices"]
    assert set(mine["admins"]) == PUBLIC and set(mine["alices"]) == FULL
    a = mine["alices"]
    assert a["owner"] == "alice" and a["protocol"] == "srt" and a["relay"] == "10.0.0.5:7700"
    assert a["client"] == "203.0.113.7:50123" and a["publisher"] == "ingest-1/42"
    # an admin: every detail, and records without a stream
    every = {s["name"]: s for s in live(api, api.admin)["streams"]}
    assert list(every) == ["admins", "alices", "ghost"]
    assert all(set(s) == FULL for s in every.values())
    assert every["ghost"]["title"] is None and every["ghost"]["owner"] is None
    assert every["admins"]["owner"] == "admin"
    # a token is checked when given: a bad one is refused, not treated as none
    assert_error(api.call("GET", "/v1/live", token="not-a-token"), 401, "unauthorized")


def test_private_when_configured(api_factory, redis_server):
    api = api_factory(SLUICE_LIVE_PUBLIC="false", SLUICE_EDGE_URL="https://live.example.com/hls/")
    api.create_stream("cam1")
    go_live(redis_server.client(), "cam1")
    assert_error(api.call("GET", "/v1/live"), 401, "unauthorized")
    got = live(api, api.admin)["streams"]
    assert got[0]["playback_url"] == "https://live.example.com/hls/live/cam1/index.m3u8"


def test_paging_and_many_streams(api, redis_server, postgres_db):
    """More live streams than one SCAN round sees, and noise around them."""
    import psycopg2
    rd = redis_server.client()
    n = 2500
    with psycopg2.connect(postgres_db) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO streams (name, title, owner_id, auth_version)"
                    " SELECT 's' || lpad(i::text, 5, '0'), 'title ' || i,"
                    " (SELECT id FROM users LIMIT 1), 0 FROM generate_series(0, %s) i",
                    (n - 1,))
    pipe = rd.pipeline(transaction=False)
    for i in range(n):
        name = f"s{i:05d}"
        pipe.set(f"sluice:stream:{name}", record(name), px=120000)
        pipe.set(f"sluice:hls:{name}", "{}", px=120000)   # other keys SCAN walks past
    pipe.execute()
    first = live(api, query="?limit=1000")
    assert len(first["streams"]) == 1000 and first["next"] == "s00999"
    assert first["streams"][0] == {"name": "s00000", "title": "title 0", "category": "",
                                   "started_at": "2026-11-21T10:00:00.123Z",
                                   "playback_url": "http://127.0.0.1:8081/live/s00000/index.m3u8"}
    second = live(api, query="?limit=1000&after=s00999")
    third = live(api, query="?limit=1000&after=" + second["next"])
    got = [s["name"] for page in (first, second, third) for s in page["streams"]]
    assert got == [f"s{i:05d}" for i in range(n)] and third["next"] is None
    assert names(api, query="?limit=2&after=s02497") == ["s02498", "s02499"]
    for bad in ("limit=0", "limit=1001", "limit=99999999999", "after=a%20b", "after=%27"):
        assert_error(api.call("GET", f"/v1/live?{bad}"), 400, "bad_request")


def test_malformed_records_are_skipped(api, redis_server):
    rd = redis_server.client()
    api.create_stream("good")
    for n in ("bad1", "bad2", "bad3", "bad4"):
        api.create_stream(n)
    go_live(rd, "good")
    rd.set("sluice:stream:bad1", "not json")
    rd.set("sluice:stream:bad2", json.dumps({"name": "other"}))
    rd.set("sluice:stream:bad3", json.dumps(["bad3"]))
    rd.set("sluice:stream:bad4", json.dumps({"name": "bad4", "started_at": "yesterday",
                                            "protocol": 5, "client": "x" * 1000}))
    rd.set("sluice:stream:bad name", record("bad name"))
    rd.set("sluice:stream:", "{}")
    rd.hset("sluice:stream:hash", "name", "hash")      # a key of the wrong type
    got = {s["name"]: s for s in live(api, api.admin)["streams"]}
    assert sorted(got) == ["bad4", "good"]
    assert got["bad4"]["started_at"] is None and got["bad4"]["protocol"] is None
    assert got["bad4"]["client"] is None
    assert api.daemon.proc.poll() is None


def test_redis_down(api, redis_server):
    api.create_stream("cam1")
    go_live(redis_server.client(), "cam1")
    assert names(api) == ["cam1"]
    redis_server.stop()
    wait_for(lambda: not api.daemon.ready(), timeout=10, what="redis down in /readyz")
    t = time.monotonic()
    assert_error(api.call("GET", "/v1/live"), 503, "unavailable")
    assert_error(api.call("GET", "/v1/live", token=api.admin), 503, "unavailable")
    assert time.monotonic() - t < 2
    redis_server.start()
    wait_for(api.daemon.ready, timeout=15, what="redis back")
    assert names(api) == []   # a new, empty Redis


def test_calls_share_flights(api, redis_server):
    """Calls that arrive while the list is being read wait for the next read,
    which serves them all: two reads for twenty calls, each answered for its
    caller."""
    from concurrent.futures import ThreadPoolExecutor
    rd = redis_server.client()
    api.create_user("alice")
    alice = api.login("alice", "password-1")
    api.create_stream("alices", token=alice)
    api.create_stream("admins")
    for n in ("alices", "admins"):
        go_live(rd, n)
    admin = api.admin

    def scans():
        return rd.info("commandstats").get("cmdstat_scan", {}).get("calls", 0)

    before = scans()
    rd.execute_command("CLIENT", "PAUSE", "700", "ALL")   # the first read waits on it
    tokens = [None, alice, admin, "bad"] * 5
    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        replies = list(pool.map(lambda t: api.call("GET", "/v1/live", token=t), tokens))
    assert scans() - before == 2
    for t, r in zip(tokens, replies):
        if t == "bad":
            assert_error(r, 401)
            continue
        assert r.status_code == 200, r.text
        got = {s["name"]: s for s in r.json()["streams"]}
        assert list(got) == ["admins", "alices"]
        assert ("owner" in got["alices"]) == (t is not None)
        assert ("owner" in got["admins"]) == (t is admin)


def test_with_a_real_relay(api, daemons, redis_server):
    """The relay, not the test, writes the record: a stream is live while its
    publisher is connected to the relay, and leaves the list when it goes."""
    from relay_fixtures import lease, raw_publisher, start_relay
    relay = start_relay(daemons, redis_server)
    api.create_stream("cam1", title="From the relay")
    lease(redis_server, "cam1", "ingest-1/7")
    pub = raw_publisher(relay, "cam1", "ingest-1/7")
    got = wait_for(lambda: live(api, api.admin)["streams"], timeout=5, what="cam1 live")
    assert [s["name"] for s in got] == ["cam1"]
    s = got[0]
    assert s["title"] == "From the relay" and s["relay"] == relay.slp
    assert s["relay_id"] == relay.node and s["publisher"] == "ingest-1/7"
    assert s["protocol"] == "srt" and s["client"] == "203.0.113.7:5000"
    assert s["started_at"] is not None and s["owner"] == "admin"
    pub.close()
    wait_for(lambda: names(api) == [], timeout=5, what="cam1 to leave the list")


# ---- the live state of GET /v1/streams and GET /v1/streams/{name} ----------

LIVE_FIELDS = {"started_at", "protocol", "client", "ingest", "relay", "relay_id", "publisher"}


def streams(api, token=None):
    r = api.call("GET", "/v1/streams", token=token or api.admin)
    assert r.status_code == 200, r.text
    return {s["name"]: s for s in r.json()["streams"]}


def one(api, name, token=None):
    r = api.call("GET", f"/v1/streams/{name}", token=token or api.admin)
    assert r.status_code == 200, r.text
    return r.json()


def test_streams_show_their_live_state(api, redis_server):
    """A stream is live while its relay record exists: false, then true with
    the record's fields when the relay writes it, then false again when the
    record expires."""
    rd = redis_server.client()
    api.create_user("alice")
    alice = api.login("alice", "password-1")
    api.create_stream("alices", token=alice)
    api.create_stream("cam1")
    for s in list(streams(api).values()) + [one(api, "cam1")]:
        assert s["live"] is False and not LIVE_FIELDS & set(s), s
    go_live(rd, "cam1", ttl_ms=1500, started="2026-11-21T09:00:00.000Z")
    go_live(rd, "alices")
    got = streams(api)
    cam1 = got["cam1"]
    assert cam1["live"] is True and cam1["started_at"] == "2026-11-21T09:00:00.000Z"
    assert cam1["protocol"] == "srt" and cam1["client"] == "203.0.113.7:50123"
    assert cam1["ingest"] == "ingest-1" and cam1["relay"] == "10.0.0.5:7700"
    assert cam1["relay_id"] == "relay-1" and cam1["publisher"] == "ingest-1/42"
    assert cam1["title"] == "" and cam1["owner"] == "admin"   # the stream is all there
    assert one(api, "cam1") == cam1
    # a publisher sees the live state of its own streams, details included
    mine = streams(api, alice)
    assert list(mine) == ["alices"] and mine["alices"]["live"] is True
    assert set(mine["alices"]) >= LIVE_FIELDS
    assert one(api, "alices", alice) == mine["alices"]
    # /v1/live agrees
    assert names(api) == ["alices", "cam1"]
    # cam1's relay stops refreshing its record: it is not live any more
    wait_for(lambda: streams(api)["cam1"]["live"] is False, timeout=5, what="cam1 to expire")
    assert not LIVE_FIELDS & set(one(api, "cam1"))
    assert streams(api)["alices"]["live"] is True
    # answers to changes carry no live state
    r = api.call("PATCH", "/v1/streams/alices", token=alice, json_body={"title": "t"})
    assert r.status_code == 200 and "live" not in r.json(), r.text


def test_streams_read_their_records_in_one_round_trip(api, redis_server, postgres_db):
    import psycopg2
    rd = redis_server.client()
    with psycopg2.connect(postgres_db) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO streams (name, title, owner_id, auth_version)"
                    " SELECT 's' || lpad(i::text, 4, '0'), '', (SELECT id FROM users LIMIT 1), 0"
                    " FROM generate_series(0, 249) i")
    for i in range(0, 250, 7):
        go_live(rd, f"s{i:04d}")

    def mgets():
        return rd.info("commandstats").get("cmdstat_mget", {}).get("calls", 0)

    before = mgets()
    r = api.call("GET", "/v1/streams?limit=200", token=api.admin)
    assert r.status_code == 200, r.text
    assert mgets() - before == 1
    page = r.json()["streams"]
    assert len(page) == 200
    assert [s["name"] for s in page if s["live"]] == [f"s{i:04d}" for i in range(0, 200, 7)]
    r = api.call("GET", "/v1/streams?limit=200&after=s0199", token=api.admin)
    assert [s["name"] for s in r.json()["streams"] if s["live"]] == [
        f"s{i:04d}" for i in range(203, 250, 7)]
    assert mgets() - before == 2


def test_streams_with_malformed_records_are_not_live(api, redis_server):
    rd = redis_server.client()
    for n in ("bad1", "bad2", "bad3", "good"):
        api.create_stream(n)
    rd.set("sluice:stream:bad1", "not json")
    rd.set("sluice:stream:bad2", json.dumps({"name": "other"}))
    rd.hset("sluice:stream:bad3", "name", "bad3")       # a key of the wrong type
    go_live(rd, "good")
    got = streams(api)
    assert {n: s["live"] for n, s in got.items()} == {
        "bad1": False, "bad2": False, "bad3": False, "good": True}
    assert api.daemon.proc.poll() is None


def test_streams_without_redis(api, redis_server):
    """Redis down: the streams are still listed, their live state null (unknown)."""
    api.create_stream("cam1")
    api.create_stream("cam2")
    go_live(redis_server.client(), "cam1")
    assert streams(api)["cam1"]["live"] is True
    redis_server.stop()
    wait_for(lambda: not api.daemon.ready(), timeout=10, what="redis down in /readyz")
    t = time.monotonic()
    got = streams(api)
    assert list(got) == ["cam1", "cam2"]
    for s in list(got.values()) + [one(api, "cam1")]:
        assert s["live"] is None and not LIVE_FIELDS & set(s), s
        assert s["owner"] == "admin"
    assert time.monotonic() - t < 2
    redis_server.start()
    wait_for(api.daemon.ready, timeout=15, what="redis back")
    assert streams(api)["cam1"]["live"] is False   # a new, empty Redis


def test_streams_when_redis_stalls(api, redis_server):
    """Redis up but not answering: the read waits for the command timeout (2 s),
    no longer, and answers with the live state unknown."""
    rd = redis_server.client()
    api.create_stream("cam1")
    go_live(rd, "cam1")
    admin = api.admin
    rd.execute_command("CLIENT", "PAUSE", "4000", "ALL")
    t = time.monotonic()
    r = api.call("GET", "/v1/streams", token=admin)
    took = time.monotonic() - t
    assert r.status_code == 200, r.text
    assert r.json()["streams"][0]["live"] is None
    assert 1.5 < took < 3.5, took
    wait_for(lambda: streams(api)["cam1"]["live"] is True, timeout=15, what="Redis back")
