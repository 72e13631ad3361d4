"""sluice-api: streams and keys, ownership, and the events each change
publishes on sluice:events before its reply."""
import hashlib
import json

import pytest

from api_fixtures import api, api_factory, assert_error, pending_event


@pytest.fixture
def events(api, redis_server):
    """A subscriber to sluice:events, subscribed before the test calls."""
    ps = redis_server.client().pubsub(ignore_subscribe_messages=True)
    ps.subscribe("sluice:events")
    assert ps.get_message(timeout=2) is None   # consumes the confirmation
    yield ps
    ps.close()


def sha256(key):
    return hashlib.sha256(key.encode()).hexdigest()


def test_create_returns_the_key_once(api, events):
    r = api.call("POST", "/v1/streams", token=api.admin, json_body={
        "name": "cam1", "title": "Cam one", "category": "news",
        "passphrase": "correct horse"})
    assert r.status_code == 201, r.text
    ev = pending_event(events)
    body = r.json()
    assert set(body) == {"stream", "key"}
    key = body["key"]
    assert key.startswith("sk_") and len(key) >= 3 + 22   # >= 128 bits of base64url
    s = body["stream"]
    assert s["name"] == "cam1" and s["title"] == "Cam one" and s["category"] == "news"
    assert s["owner"] == "admin" and s["has_passphrase"] is True
    assert s["disabled"] is False and s["record"] is False
    assert "passphrase" not in s and "key" not in json.dumps(s)
    # the event carries the auth entry ingest needs
    assert ev["type"] == "stream.created" and ev["stream"] == "cam1"
    assert ev["auth"] == {"name": "cam1", "key_sha256": sha256(key),
                          "passphrase": "correct horse", "disabled": False,
                          "version": ev["version"]}
    assert api.authtable()["version"] == ev["version"]
    # usable at once
    assert api.authorize(key, "cam1")["allow"] is True
    # never shown again
    got = api.call("GET", "/v1/streams/cam1", token=api.admin)
    assert got.status_code == 200 and key not in got.text and "correct horse" not in got.text
    assert key not in api.call("GET", "/v1/streams", token=api.admin).text


def test_update_publishes_stream_updated(api, events):
    api.create_stream("cam1", passphrase="0123456789")
    pending_event(events)
    r = api.call("PATCH", "/v1/streams/cam1", token=api.admin,
                 json_body={"title": "new title", "disabled": True, "passphrase": None})
    assert r.status_code == 200, r.text
    ev = pending_event(events)
    s = r.json()
    assert s["title"] == "new title" and s["disabled"] is True and s["has_passphrase"] is False
    assert ev["type"] == "stream.updated"
    assert ev["auth"]["disabled"] is True and ev["auth"]["passphrase"] is None
    # untouched fields stay
    r = api.call("PATCH", "/v1/streams/cam1", token=api.admin,
                 json_body={"passphrase": "another secret"})
    assert r.json()["title"] == "new title" and r.json()["has_passphrase"] is True
    assert pending_event(events)["auth"]["passphrase"] == "another secret"
    assert_error(api.call("PATCH", "/v1/streams/cam1", token=api.admin, json_body={}), 400)
    assert_error(api.call("PATCH", "/v1/streams/nope", token=api.admin,
                          json_body={"title": "x"}), 404)
    assert events.get_message(timeout=0.2) is None   # refusals publish nothing


def test_rotated_key_stops_working_at_once(api, events):
    old = api.create_stream("cam1")["key"]
    pending_event(events)
    r = api.call("POST", "/v1/streams/cam1/key", token=api.admin)
    assert r.status_code == 200, r.text
    ev = pending_event(events)
    new = r.json()["key"]
    assert new != old and r.json()["stream"]["name"] == "cam1"
    assert ev["type"] == "key.rotated" and ev["auth"]["key_sha256"] == sha256(new)
    denied = api.authorize(old, "cam1")
    assert denied["allow"] is False and denied["code"] == 1401
    assert api.authorize(old)["allow"] is False
    assert api.authorize(new, "cam1")["allow"] is True
    assert [e["key_sha256"] for e in api.authtable()["streams"]] == [sha256(new)]


def test_delete_publishes_stream_deleted(api, events):
    key = api.create_stream("cam1")["key"]
    created = pending_event(events)
    r = api.call("DELETE", "/v1/streams/cam1", token=api.admin)
    assert r.status_code == 204 and r.content == b""
    ev = pending_event(events)
    assert ev["type"] == "stream.deleted" and ev["stream"] == "cam1" and ev["auth"] is None
    assert ev["version"] > created["version"]
    assert api.authorize(key)["allow"] is False
    assert api.authtable() == {"version": ev["version"], "streams": []}
    assert_error(api.call("DELETE", "/v1/streams/cam1", token=api.admin), 404)
    assert_error(api.call("GET", "/v1/streams/cam1", token=api.admin), 404)
    # the name is free again
    api.create_stream("cam1")


def test_names_and_duplicates(api):
    api.create_stream("A-b_9")
    assert_error(api.call("POST", "/v1/streams", token=api.admin,
                          json_body={"name": "A-b_9"}), 409, "conflict")
    for bad in ("", "a b", "a/b", "a.b", "é", "x" * 65, "../x", "a%2Fb"):
        assert_error(api.call("POST", "/v1/streams", token=api.admin,
                              json_body={"name": bad}), 400)
    for bad in ("a%20b", "a%2Fb", "x" * 65, "%00"):
        assert api.call("GET", f"/v1/streams/{bad}", token=api.admin).status_code in (400, 404)


def test_passphrase_bounds(api):
    for pp, status in (("p" * 9, 400), ("p" * 10, 201), ("p" * 79, 201), ("p" * 80, 400),
                       ("tab\there-x", 400), (12345678901, 400)):
        r = api.call("POST", "/v1/streams", token=api.admin,
                     json_body={"name": f"s{len(str(pp))}{status}", "passphrase": pp})
        assert r.status_code == status, (pp, r.text)
    r = api.call("PATCH", "/v1/streams/s10201", token=api.admin,
                 json_body={"passphrase": "p" * 80})
    assert_error(r, 400)


def test_publishers_own_their_streams(api):
    api.create_user("alice")
    api.create_user("bob")
    alice = api.login("alice", "password-1")
    bob = api.login("bob", "password-1")
    a = api.create_stream("alices", token=alice)
    assert a["stream"]["owner"] == "alice"
    api.create_stream("bobs", token=bob)
    api.create_stream("admins")
    # an admin creates for someone else
    api.create_stream("forbob", owner="bob")
    assert_error(api.call("POST", "/v1/streams", token=api.admin,
                          json_body={"name": "x", "owner": "nobody"}), 400)
    # a publisher cannot
    assert_error(api.call("POST", "/v1/streams", token=alice,
                          json_body={"name": "x", "owner": "bob"}), 403, "forbidden")
    names = lambda t: [s["name"] for s in api.call("GET", "/v1/streams", token=t).json()["streams"]]
    assert names(alice) == ["alices"]
    assert names(bob) == ["bobs", "forbob"]
    assert names(api.admin) == ["admins", "alices", "bobs", "forbob"]
    # another's stream does not exist, as far as a publisher can tell
    for method, path, body in (("GET", "/v1/streams/bobs", None),
                               ("PATCH", "/v1/streams/bobs", {"title": "mine"}),
                               ("DELETE", "/v1/streams/bobs", None),
                               ("POST", "/v1/streams/bobs/key", None),
                               ("POST", "/v1/streams/bobs/sessions", {"mode": "publish"})):
        assert_error(api.call(method, path, token=alice, json_body=body), 404)
    assert api.call("PATCH", "/v1/streams/alices", token=alice,
                    json_body={"title": "mine"}).status_code == 200
    assert api.call("PATCH", "/v1/streams/alices", token=api.admin,
                    json_body={"title": "admin's"}).status_code == 200


def test_list_paging(api):
    for i in range(5):
        api.create_stream(f"s{i}")
    page = api.call("GET", "/v1/streams?limit=2", token=api.admin).json()
    assert [s["name"] for s in page["streams"]] == ["s0", "s1"] and page["next"] == "s1"
    page = api.call("GET", "/v1/streams?limit=2&after=s1", token=api.admin).json()
    assert [s["name"] for s in page["streams"]] == ["s2", "s3"]
    page = api.call("GET", "/v1/streams?limit=2&after=s3", token=api.admin).json()
    assert [s["name"] for s in page["streams"]] == ["s4"] and page["next"] is None
    assert_error(api.call("GET", "/v1/streams?limit=0", token=api.admin), 400)


def test_changes_need_redis(api, redis_server):
    key = api.create_stream("cam1")["key"]
    redis_server.stop()
    from conftest import wait_for
    wait_for(lambda: not api.daemon.ready(), timeout=10, what="redis down in /readyz")
    r = api.call("POST", "/v1/streams", token=api.admin, json_body={"name": "cam2"})
    assert_error(r, 503, "unavailable")
    assert_error(api.call("POST", "/v1/streams/cam1/key", token=api.admin), 503)
    # reads and key authorization do not need Redis
    assert api.call("GET", "/v1/streams/cam1", token=api.admin).status_code == 200
    assert api.authorize(key, "cam1")["allow"] is True
    # and nothing was half-done
    assert [s["name"] for s in api.call("GET", "/v1/streams", token=api.admin).json()["streams"]] == ["cam1"]
    redis_server.start()
    wait_for(api.daemon.ready, timeout=15, what="redis back")
    api.create_stream("cam2")


def test_reply_waits_for_the_event(api, events, redis_server):
    """Ordering, made visible: while Redis holds writes (PUBLISH included), a
    change is not answered; the answer comes once the event is out."""
    import time
    api.create_stream("cam1")
    pending_event(events)
    redis_server.client().execute_command("CLIENT", "PAUSE", "600", "WRITE")
    t = time.monotonic()
    r = api.call("PATCH", "/v1/streams/cam1", token=api.admin, json_body={"title": "t"})
    elapsed = time.monotonic() - t
    assert r.status_code == 200
    assert elapsed > 0.4, elapsed
    assert pending_event(events)["type"] == "stream.updated"
