"""docs/openapi.yaml against the daemon: every route the api serves is in the
document and every path of the document is served (from `sluice-api
--routes`, the tables the daemon routes with); and the answers of a walk
through every operation, successes and refusals, are answers the document
allows, bodies validated against its schemas."""
import json
import subprocess

import pytest

import openapi_spec
from api_fixtures import INTERNAL_TOKEN, api, api_factory
from conftest import BIN, wait_for


def daemon_routes():
    out = subprocess.run([str(BIN / "sluice-api"), "--routes"], capture_output=True,
                         text=True, check=True, timeout=10).stdout
    return {tuple(line.split(" ", 1)) for line in out.splitlines()}


def test_routes_match_the_document():
    served, documented = daemon_routes(), openapi_spec.routes(openapi_spec.load())
    assert served, "sluice-api --routes printed nothing"
    assert served - documented == set(), "served but not in docs/openapi.yaml"
    assert documented - served == set(), "in docs/openapi.yaml but not served"


def test_every_operation_documents_its_errors():
    spec = openapi_spec.load()
    for path, item in spec["paths"].items():
        for method in openapi_spec.METHODS:
            op = item.get(method)
            if op is None:
                continue
            codes = set(op["responses"])
            assert {"500", "503"} <= codes, (method, path)
            if op.get("security") != []:
                assert "401" in codes, (method, path)
            if "requestBody" in op:
                assert {"400", "413", "415"} <= codes, (method, path)


@pytest.fixture
def spec():
    return openapi_spec.Checker()


def test_answers_follow_the_document(api, spec, redis_server):
    rd = redis_server.client()

    def call(method, template, path=None, token=None, body=None, **kw):
        r = api.call(method, path or template, token=token, json_body=body, **kw)
        spec.check(r, method, template)
        return r

    def internal(method, template, path=None, body=None, token=INTERNAL_TOKEN, **kw):
        return call(method, template, path, token=token, body=body, **kw)

    admin = call("POST", "/v1/auth/login",
                 body={"username": "admin", "password": "admin-password-1"}).json()["token"]
    call("POST", "/v1/auth/login", body={"username": "admin", "password": "wrong-password"})
    call("POST", "/v1/auth/login", body={"username": "admin"})
    call("POST", "/v1/auth/login", data=b"x" * 70000, headers={"Content-Type": "application/json"})
    call("POST", "/v1/auth/login", data=b"{}", headers={"Content-Type": "text/plain"})

    # users
    alice = call("POST", "/v1/users", token=admin,
                 body={"username": "alice", "password": "password-1"}).json()
    call("POST", "/v1/users", token=admin, body={"username": "alice", "password": "password-1"})
    call("POST", "/v1/users", token=admin, body={"username": "bad name!", "password": "x"})
    call("GET", "/v1/users", token=admin)
    call("GET", "/v1/users", "/v1/users?limit=1", token=admin)
    call("GET", "/v1/users", "/v1/users?limit=0", token=admin)
    call("GET", "/v1/users")
    pub = api.login("alice", "password-1")
    call("GET", "/v1/users", token=pub)
    call("DELETE", "/v1/users/{id}", "/v1/users/99999", token=admin)

    # streams, keys, sessions
    created = call("POST", "/v1/streams", token=admin,
                   body={"name": "cam1", "title": "One", "passphrase": "0123456789"}).json()
    call("POST", "/v1/streams", token=pub, body={"name": "alices"})
    call("POST", "/v1/streams", token=admin, body={"name": "cam1"})
    call("POST", "/v1/streams", token=admin, body={"name": 5})
    call("POST", "/v1/streams", token=pub, body={"name": "x", "owner": "admin"})
    call("GET", "/v1/streams", token=admin)
    call("GET", "/v1/streams", "/v1/streams?limit=1", token=pub)
    call("GET", "/v1/streams/{name}", "/v1/streams/cam1", token=admin)
    call("GET", "/v1/streams/{name}", "/v1/streams/cam1", token=pub)
    call("PATCH", "/v1/streams/{name}", "/v1/streams/cam1", token=admin,
         body={"passphrase": None, "record": True})
    call("PATCH", "/v1/streams/{name}", "/v1/streams/cam1", token=admin, body={})
    call("POST", "/v1/streams/{name}/key", "/v1/streams/cam1/key", token=admin)
    call("POST", "/v1/streams/{name}/key", "/v1/streams/nope/key", token=admin)
    call("POST", "/v1/streams/{name}/sessions", "/v1/streams/cam1/sessions", token=admin,
         body={"mode": "publish"})
    call("POST", "/v1/streams/{name}/sessions", "/v1/streams/cam1/sessions", token=admin,
         body={"mode": "watch"})
    call("POST", "/v1/streams/{name}/sessions", "/v1/streams/cam1/sessions", token=pub,
         body={"mode": "request"})
    call("DELETE", "/v1/users/{id}", f"/v1/users/{alice['id']}", token=admin)   # owns alices

    # internal: authtable, authorize
    internal("GET", "/internal/v1/authtable")
    internal("GET", "/internal/v1/authtable", token="wrong")
    internal("POST", "/internal/v1/authorize",
             body={"protocol": "srt", "action": "publish", "stream": "cam1",
                   "key": created["key"]})
    internal("POST", "/internal/v1/authorize",
             body={"protocol": "rtmp", "action": "publish", "key": "sk_" + "a" * 32})
    internal("POST", "/internal/v1/authorize", body={"protocol": "srt"})
    key = call("POST", "/v1/streams/{name}/key", "/v1/streams/cam1/key", token=admin).json()
    allowed = internal("POST", "/internal/v1/authorize",
                       body={"protocol": "srt", "action": "request", "key": key["key"]}).json()
    assert allowed["allow"] is True

    # live
    rd.set("sluice:stream:cam1", json.dumps({
        "name": "cam1", "relay": "10.0.0.5:7700", "relay_id": "relay-1", "ingest": "ingest-1",
        "protocol": "srt", "client": "203.0.113.7:50123", "publisher": "ingest-1/42",
        "started_at": "2026-11-21T10:00:00.123Z"}))
    rd.set("sluice:stream:ghost", json.dumps({"name": "ghost"}))
    assert len(call("GET", "/v1/live").json()["streams"]) == 1
    assert len(call("GET", "/v1/live", token=admin).json()["streams"]) == 2
    call("GET", "/v1/live", token=pub)
    call("GET", "/v1/live", "/v1/live?limit=5000")
    call("GET", "/v1/live", token="bad")
    # the live state of streams: live (cam1), and not live (alices: its record is not one)
    rd.set("sluice:stream:alices", "not json")
    listed = call("GET", "/v1/streams", token=admin).json()["streams"]
    assert {s["name"]: s["live"] for s in listed} == {"alices": False, "cam1": True}
    assert call("GET", "/v1/streams/{name}", "/v1/streams/cam1", token=admin).json()["live"]

    # recordings
    rec = {"stream": "cam1", "started_at": "2026-11-21T10:00:00Z", "holder_url": "http://h:8084"}
    internal("PUT", "/internal/v1/recordings/{id}", "/internal/v1/recordings/r1", body=rec)
    internal("PUT", "/internal/v1/recordings/{id}", "/internal/v1/recordings/r1",
             body=dict(rec, ended_at="2026-11-21T11:00:00Z", bytes=10))
    internal("PUT", "/internal/v1/recordings/{id}", "/internal/v1/recordings/r1",
             body=dict(rec, stream="cam2"))
    internal("PUT", "/internal/v1/recordings/{id}", "/internal/v1/recordings/r1",
             body=dict(rec, bytes=-1))
    internal("PUT", "/internal/v1/recordings/{id}", "/internal/v1/recordings/r2", body=rec,
             token=None)
    call("GET", "/v1/recordings", token=admin)
    call("GET", "/v1/recordings", "/v1/recordings?stream=cam1&limit=1", token=pub)
    call("GET", "/v1/recordings", "/v1/recordings?stream=a%20b", token=admin)
    call("GET", "/v1/recordings/{id}", "/v1/recordings/r1", token=admin)
    call("GET", "/v1/recordings/{id}", "/v1/recordings/r1", token=pub)
    call("DELETE", "/v1/recordings/{id}", "/v1/recordings/r1", token=admin)
    internal("PUT", "/internal/v1/recordings/{id}", "/internal/v1/recordings/r1", body=rec)
    call("DELETE", "/v1/recordings/{id}", "/v1/recordings/r1", token=admin)

    # audit
    call("GET", "/v1/audit", token=admin)
    call("GET", "/v1/audit", "/v1/audit?action=stream.created&limit=1", token=admin)
    call("GET", "/v1/audit", "/v1/audit?since=yesterday", token=admin)
    call("GET", "/v1/audit", token=pub)

    # the login throttle (it locks this address out: last)
    for _ in range(5):
        call("POST", "/v1/auth/login", body={"username": "ghost", "password": "nope-nope"})
    assert call("POST", "/v1/auth/login",
                body={"username": "ghost", "password": "nope-nope"}).status_code == 429

    # Redis down: changes that must be announced are refused
    redis_server.stop()
    wait_for(lambda: not api.daemon.ready(), timeout=10, what="redis down")
    call("DELETE", "/v1/streams/{name}", "/v1/streams/cam1", token=admin)
    call("GET", "/v1/live", token=admin)
    assert call("GET", "/v1/streams", token=admin).json()["streams"][0]["live"] is None
    one = call("GET", "/v1/streams/{name}", "/v1/streams/cam1", token=admin).json()
    assert one["live"] is None
    redis_server.start()
    wait_for(api.daemon.ready, timeout=15, what="redis back")
    call("DELETE", "/v1/streams/{name}", "/v1/streams/cam1", token=admin)
    call("DELETE", "/v1/streams/{name}", "/v1/streams/cam1", token=admin)

    # every operation was seen answering
    seen_ops = {(m, t) for m, t, _ in spec.seen}
    documented = {(m.upper(), p) for p, item in spec.spec["paths"].items()
                  for m in openapi_spec.METHODS if m in item}
    assert documented - seen_ops == set()
