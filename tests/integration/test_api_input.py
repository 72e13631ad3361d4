"""sluice-api: hostile and broken input gets a JSON error, never a crash, never
SQL in a reply, never a change it should not make."""
import json

import psycopg2

from api_fixtures import api, api_factory, assert_error

INJECTIONS = [
    "'; DROP TABLE users; --",
    "x' OR '1'='1",
    "\"; DELETE FROM streams; --",
    "1); TRUNCATE stream_keys; --",
    "$1",
    "\\'",
    "' UNION SELECT password_hash FROM users --",
]


def test_malformed_bodies(api):
    for path in ("/v1/auth/login", "/v1/users", "/v1/streams"):
        for raw in ("{", "", "null", "[]", "\"x\"", "{\"a\":1}}", "{'a': 1}",
                    "{\"name\":\"a\",\"name\":\"b\"}", "\x00", "{\"a\":\"\\u0000\"}"):
            r = api.call("POST", path, token=api.admin, data=raw.encode(),
                         headers={"Content-Type": "application/json"})
            assert_error(r, 400)


def test_content_type(api):
    r = api.call("POST", "/v1/streams", token=api.admin, data=b'{"name":"x"}',
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 415, "unsupported_media_type")
    # no Content-Type at all is read as JSON
    r = api.call("POST", "/v1/streams", token=api.admin, data=b'{"name":"x"}')
    assert r.status_code == 201


def test_huge_bodies(api):
    big = json.dumps({"name": "x", "title": "t" * 70000}).encode()
    r = api.call("POST", "/v1/streams", token=api.admin, data=big,
                 headers={"Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large")
    r = api.call("POST", "/v1/auth/login", data=b"{" + b" " * 300000 + b"}",
                 headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 413)
    deep = ("[" * 5000 + "]" * 5000).encode()
    assert_error(api.call("POST", "/v1/streams", token=api.admin, data=deep,
                          headers={"Content-Type": "application/json"}), 400)


def test_wrong_types_and_unknown_fields(api):
    for body in ({"name": 5}, {"name": ["a"]}, {"name": {"a": 1}}, {"name": True},
                 {"name": "ok", "title": 1}, {"name": "ok", "disabled": "true"},
                 {"name": "ok", "record": 1}, {"name": "ok", "owner": 7},
                 {"name": "ok", "id": 3}, {"name": "ok", "key": "sk_mine"}):
        msg = assert_error(api.call("POST", "/v1/streams", token=api.admin,
                                    json_body=body), 400)["message"]
        assert any(field in msg for field in body if field != "name" or len(body) == 1), msg


def test_sql_injection_in_every_field(api, postgres_db):
    api.create_user("pub")
    pub = api.login("pub", "password-1")
    key = api.create_stream("cam1")["key"]
    for s in INJECTIONS:
        # where the grammar refuses it: 400
        for path, body in (("/v1/streams", {"name": s}),
                           ("/v1/streams", {"name": "ok1", "owner": s}),
                           ("/v1/streams", {"name": "ok1", "passphrase": s}),
                           ("/v1/users", {"username": s, "password": "password-1"}),
                           ("/v1/users", {"username": "u1", "password": "password-1",
                                          "role": s}),
                           ("/v1/streams/cam1/sessions", {"mode": s})):
            r = api.call("POST", path, token=api.admin, json_body=body)
            if r.status_code != 400:
                # only a passphrase of printable ASCII can pass: then it is data
                assert body.get("passphrase") == s and r.status_code == 201, (body, r.text)
                api.call("DELETE", "/v1/streams/ok1", token=api.admin)
            else:
                assert_error(r, 400)
        # where it is valid data: stored and returned as is
        r = api.call("PATCH", "/v1/streams/cam1", token=api.admin,
                     json_body={"title": s, "category": s})
        assert r.status_code == 200 and r.json()["title"] == s and r.json()["category"] == s
        r = api.call("POST", "/v1/auth/login", json_body={"username": s, "password": s})
        assert_error(r, 429 if r.status_code == 429 else 401)   # the throttle joins in
        assert_error(api.call("GET", "/v1/users", token=s), 401)
        # in the path and the query
        for method, path in (("GET", f"/v1/streams/{s}"), ("DELETE", f"/v1/users/{s}"),
                             ("GET", f"/v1/streams?after={s}")):
            r = api.call(method, path, token=api.admin)
            assert r.status_code in (200, 400, 404), (path, r.text)
        d = api.authorize(s, "cam1")
        assert d["allow"] is False
        d = api.authorize(key, s)
        assert d["allow"] is False and d["code"] == 1400
        assert api.authorize("sk_" + s, None)["allow"] is False
        assert_error(api.call("GET", "/internal/v1/authtable", token=s), 401)
    # everything still there
    with psycopg2.connect(postgres_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM users")
        assert cur.fetchone()[0] == 2
        cur.execute("SELECT count(*) FROM streams")
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT count(*) FROM stream_keys")
        assert cur.fetchone()[0] == 1
    assert api.authorize(key, "cam1")["allow"] is True
    assert pub


def test_routing_errors(api):
    assert_error(api.call("GET", "/nope"), 404, "not_found")
    assert_error(api.call("GET", "/v1/streams/a/b/c", token=api.admin), 404)
    r = api.call("PUT", "/v1/streams", token=api.admin, json_body={})
    assert_error(r, 405, "method_not_allowed")
    assert "POST" in r.headers["Allow"] and "GET" in r.headers["Allow"]
    assert_error(api.call("DELETE", "/v1/auth/login"), 405)
    assert_error(api.call("GET", "/internal/v1/authorize", token=api.admin), 405)


def test_utf8_text_round_trips(api):
    api.create_stream("cam1", title="Café — 日本語 🎥", category="ünïcode")
    s = api.call("GET", "/v1/streams/cam1", token=api.admin).json()
    assert s["title"] == "Café — 日本語 🎥" and s["category"] == "ünïcode"
    assert_error(api.call("PATCH", "/v1/streams/cam1", token=api.admin,
                          json_body={"title": "a\u0007b"}), 400)
    assert_error(api.call("PATCH", "/v1/streams/cam1", token=api.admin,
                          json_body={"title": "t" * 201}), 400)
