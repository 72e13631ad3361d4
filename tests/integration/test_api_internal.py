"""sluice-api: the internal endpoints ingest uses, behind the service token."""
import hashlib

from api_fixtures import INTERNAL_TOKEN, api, api_factory, assert_error
from conftest import wait_for


def test_service_token_required(api):
    for method, path, body in (("GET", "/internal/v1/authtable", None),
                               ("POST", "/internal/v1/authorize",
                                {"protocol": "srt", "action": "publish", "key": "sk_x"})):
        assert_error(api.call(method, path, json_body=body), 401, "unauthorized")
        for wrong in ("", "x", INTERNAL_TOKEN[:-1], INTERNAL_TOKEN + "x",
                      INTERNAL_TOKEN.upper()):
            assert_error(api.call(method, path, json_body=body,
                                  headers={"Authorization": f"Bearer {wrong}"}), 401)
        # a user's JWT is not a service token
        assert_error(api.call(method, path, json_body=body, token=api.admin), 401)


def test_authtable(api):
    empty = api.authtable()
    assert set(empty) == {"version", "streams"} and empty["streams"] == []
    k2 = api.create_stream("zeta", passphrase="0123456789xyz")["key"]
    k1 = api.create_stream("alpha")["key"]
    api.call("PATCH", "/v1/streams/alpha", token=api.admin, json_body={"disabled": True})
    t = api.authtable()
    assert t["version"] == empty["version"] + 3
    assert t["streams"] == [
        {"name": "alpha", "key_sha256": hashlib.sha256(k1.encode()).hexdigest(),
         "passphrase": None, "disabled": True, "version": t["version"]},
        {"name": "zeta", "key_sha256": hashlib.sha256(k2.encode()).hexdigest(),
         "passphrase": "0123456789xyz", "disabled": False, "version": t["version"] - 2},
    ]


def test_authorize_decisions(api):
    key = api.create_stream("cam1", passphrase="0123456789")["key"]
    other = api.create_stream("cam2")["key"]
    assert api.authorize(key, "cam1", client="203.0.113.5:4000") == {
        "allow": True, "stream": "cam1", "passphrase": "0123456789", "mode": "publish",
        "via": "key"}
    # a key alone finds its stream (RTMP: the key is the publish name)
    assert api.authorize(key, protocol="rtmp")["stream"] == "cam1"
    # watching with the key
    assert api.authorize(key, "cam1", action="request")["allow"] is True
    cases = [
        (dict(key=other, stream="cam1"), 1401, "bad_key"),
        (dict(key="sk_" + "A" * 32, stream="cam1"), 1401, "bad_key"),
        (dict(key="sk_" + "A" * 32), 1401, "bad_key"),
        (dict(key="not-a-key", stream="cam1"), 1401, "bad_key"),
        (dict(key="", stream="cam1"), 1401, "bad_key"),
        (dict(key=key, stream="nope"), 1404, "no_stream"),
        (dict(key=key, stream="bad name"), 1400, "malformed"),
        (dict(key=key, stream="x" * 65), 1400, "malformed"),
        (dict(key=key, stream="cam1'--"), 1400, "malformed"),
    ]
    for args, code, reason in cases:
        d = api.authorize(**args)
        assert d["allow"] is False and d["code"] == code and d["reason"] == reason, (args, d)
        assert set(d) == {"allow", "code", "reason", "message"}
    api.call("PATCH", "/v1/streams/cam1", token=api.admin, json_body={"disabled": True})
    d = api.authorize(key, "cam1")
    assert d["allow"] is False and d["code"] == 1403 and d["reason"] == "disabled"


def test_authorize_bad_requests(api):
    bad = [{}, {"protocol": "srt", "action": "publish"},
           {"protocol": "udp", "action": "publish", "key": "sk_x"},
           {"protocol": "srt", "action": "watch", "key": "sk_x"},
           {"protocol": "srt", "action": "publish", "key": 5},
           {"protocol": "srt", "action": "publish", "key": "sk_x", "stream": 5},
           {"protocol": "srt", "action": "publish", "key": "sk_x", "user": "root"}]
    for body in bad:
        assert_error(api.internal("POST", "/internal/v1/authorize", body), 400, "bad_request")
    r = api.call("POST", "/internal/v1/authorize", data="{", token=INTERNAL_TOKEN,
                 headers={"Content-Type": "application/json"})
    assert_error(r, 400)


def test_metrics(api):
    api.authorize("sk_" + "A" * 32, "cam1")
    m = api.daemon.metrics()
    assert m['sluice_api_db_up'] == 1
    assert m['sluice_api_redis_up'] == 1
    assert m['sluice_api_authorize_total{result="deny"}'] >= 1
    assert m['sluice_http_requests_total{server="api",route="/internal/v1/authorize",status="200"}'] >= 1
    assert any(k.startswith('sluice_http_request_duration_seconds_bucket{server="api"')
               for k in m)
    # the pool opens its connections in the background: under load the last
    # one may still be connecting when the first request is answered
    wait_for(lambda: api.daemon.metrics()['sluice_api_db_connections{state="ready"}'] == 4,
             what="4 ready database connections")
    assert any(k.startswith("sluice_api_db_query_duration_seconds_bucket") for k in m)
