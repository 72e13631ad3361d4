"""sluice-api: single-use session ids, consumed through authorize."""
import json
import time

from api_fixtures import api, api_factory, assert_error


def new_session(api, stream, mode="publish", token=None):
    r = api.call("POST", f"/v1/streams/{stream}/sessions", token=token or api.admin,
                 json_body={"mode": mode})
    assert r.status_code == 201, r.text
    return r.json()


def test_a_session_works_once(api, redis_server):
    api.create_stream("cam1", passphrase="0123456789")
    s = new_session(api, "cam1")
    assert set(s) == {"resource_id", "session_id", "mode", "expires_at"}
    assert s["resource_id"] == "cam1" and s["mode"] == "publish"
    assert s["session_id"].startswith("ss_") and len(s["session_id"]) >= 3 + 22
    stored = redis_server.client().get(f"sluice:session:{s['session_id']}")
    assert json.loads(stored)["stream"] == "cam1"
    ttl = redis_server.client().pttl(f"sluice:session:{s['session_id']}")
    assert 290_000 < ttl <= 300_000
    first = api.authorize(s["session_id"], "cam1")
    assert first == {"allow": True, "stream": "cam1", "passphrase": "0123456789",
                     "mode": "publish", "via": "session"}
    second = api.authorize(s["session_id"], "cam1")
    assert second["allow"] is False and second["code"] == 1401
    assert redis_server.client().exists(f"sluice:session:{s['session_id']}") == 0


def test_a_session_alone_names_its_stream(api):
    api.create_stream("cam1")
    s = new_session(api, "cam1", mode="request")
    d = api.authorize(s["session_id"], action="request", protocol="rtmp")
    assert d["allow"] is True and d["stream"] == "cam1" and d["mode"] == "request"


def test_a_session_expires(api_factory):
    api = api_factory(SLUICE_SESSION_TTL="1s")
    api.create_stream("cam1")
    s = new_session(api, "cam1")
    time.sleep(1.3)
    d = api.authorize(s["session_id"], "cam1")
    assert d["allow"] is False and d["code"] == 1401


def test_concurrent_uses_one_wins(api):
    from concurrent.futures import ThreadPoolExecutor
    api.create_stream("cam1")
    s = new_session(api, "cam1")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: api.authorize(s["session_id"], "cam1"), range(8)))
    assert sum(r["allow"] for r in results) == 1


def test_wrong_mode_or_stream_is_refused_and_burns_it(api):
    api.create_stream("cam1")
    api.create_stream("cam2")
    s = new_session(api, "cam1", mode="request")
    d = api.authorize(s["session_id"], "cam1", action="publish")
    assert d["allow"] is False and d["code"] == 1403
    assert api.authorize(s["session_id"], "cam1", action="request")["allow"] is False
    s = new_session(api, "cam1")
    d = api.authorize(s["session_id"], "cam2")
    assert d["allow"] is False and d["code"] == 1401


def test_session_for_a_deleted_or_disabled_stream(api):
    api.create_stream("cam1")
    api.create_stream("cam2")
    s1 = new_session(api, "cam1")
    s2 = new_session(api, "cam2")
    api.call("DELETE", "/v1/streams/cam1", token=api.admin)
    api.call("PATCH", "/v1/streams/cam2", token=api.admin, json_body={"disabled": True})
    assert api.authorize(s1["session_id"])["code"] == 1404
    assert api.authorize(s2["session_id"])["code"] == 1403


def test_session_refusals(api):
    api.create_stream("cam1")
    for body in ({}, {"mode": "watch"}, {"mode": 1}, {"mode": "publish", "ttl": 9}):
        assert_error(api.call("POST", "/v1/streams/cam1/sessions", token=api.admin,
                              json_body=body), 400)
    assert_error(api.call("POST", "/v1/streams/nope/sessions", token=api.admin,
                          json_body={"mode": "publish"}), 404)
    assert_error(api.call("POST", "/v1/streams/cam1/sessions",
                          json_body={"mode": "publish"}), 401)
    api.create_user("pub")
    pub = api.login("pub", "password-1")
    assert_error(api.call("POST", "/v1/streams/cam1/sessions", token=pub,
                          json_body={"mode": "publish"}), 404)
    api.create_stream("mine", token=pub)
    assert new_session(api, "mine", token=pub)["resource_id"] == "mine"


def test_sessions_need_redis(api, redis_server):
    api.create_stream("cam1")
    s = new_session(api, "cam1")
    redis_server.stop()
    from conftest import wait_for
    wait_for(lambda: not api.daemon.ready(), timeout=10, what="redis down")
    assert_error(api.call("POST", "/v1/streams/cam1/sessions", token=api.admin,
                          json_body={"mode": "publish"}), 503, "unavailable")
    r = api.internal("POST", "/internal/v1/authorize",
                     {"protocol": "srt", "action": "publish", "key": s["session_id"]})
    assert_error(r, 503, "unavailable")
    redis_server.start()
