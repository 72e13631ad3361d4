"""Helpers and fixtures for the sluice-api integration tests (test_api_*.py).
Import the fixtures you use into the test module:

    from api_fixtures import api, api_factory, ...

An `Api` is one sluice-api process on free loopback ports, against a fresh
PostgreSQL database and a private Redis, with short timeouts and a cheap
password hash so that the suite stays fast.
"""
import base64
import hashlib
import hmac
import json
import time

import pytest
import requests

from conftest import free_port, wait_for

JWT_SECRET = "integration-jwt-secret-0123456789abcdef"
INTERNAL_TOKEN = "integration-internal-token-0123456789abcdef"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-password-1"


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forge_jwt(claims, key=JWT_SECRET.encode(), alg="HS256", header=None,
              digest=hashlib.sha256):
    """A compact JWS of <claims>, signed with HMAC-<digest> and <key>
    (digest None: an empty signature, as alg none)."""
    head = header if header is not None else {"alg": alg, "typ": "JWT"}
    signing_input = (b64url(json.dumps(head).encode()) + "."
                     + b64url(json.dumps(claims).encode()))
    sig = "" if digest is None else b64url(
        hmac.new(key, signing_input.encode(), digest).digest())
    return signing_input + "." + sig


def claims_for(user_id, name, role, now=None, ttl=3600, **extra):
    now = int(time.time()) if now is None else now
    c = {"iss": "sluice", "sub": str(user_id), "name": name, "role": role,
         "iat": now, "nbf": now, "exp": now + ttl}
    c.update(extra)
    return c


class Api:
    """A client for one running sluice-api."""

    def __init__(self, daemon, port, env):
        self.daemon = daemon
        self.port = port
        self.env = env
        self.base = f"http://127.0.0.1:{port}"
        self._admin = None

    def call(self, method, path, token=None, json_body=None, headers=None, **kw):
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            kw["json"] = json_body
        return requests.request(method, self.base + path, headers=h, timeout=10, **kw)

    def login(self, username, password):
        r = self.call("POST", "/v1/auth/login",
                      json_body={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return r.json()["token"]

    @property
    def admin(self):
        """The bootstrap admin's token."""
        if self._admin is None:
            self._admin = self.login(ADMIN_USER, ADMIN_PASSWORD)
        return self._admin

    def internal(self, method, path, json_body=None, token=INTERNAL_TOKEN):
        return self.call(method, path, token=token, json_body=json_body)

    def authorize(self, key, stream=None, action="publish", protocol="srt", client=None):
        body = {"protocol": protocol, "action": action, "key": key}
        if stream is not None:
            body["stream"] = stream
        if client is not None:
            body["client"] = client
        r = self.internal("POST", "/internal/v1/authorize", body)
        assert r.status_code == 200, r.text
        return r.json()

    def create_user(self, username, password="password-1", role="publisher"):
        r = self.call("POST", "/v1/users", token=self.admin,
                      json_body={"username": username, "password": password, "role": role})
        assert r.status_code == 201, r.text
        return r.json()

    def create_stream(self, name, token=None, **fields):
        r = self.call("POST", "/v1/streams", token=token or self.admin,
                      json_body={"name": name, **fields})
        assert r.status_code == 201, r.text
        return r.json()

    def authtable(self):
        r = self.internal("GET", "/internal/v1/authtable")
        assert r.status_code == 200, r.text
        return r.json()


def api_env(dsn, redis_url, **overrides):
    port = free_port()
    env = {
        "SLUICE_LISTEN": f"127.0.0.1:{port}",
        "SLUICE_DATABASE_URL": dsn,
        "SLUICE_REDIS_URL": redis_url,
        "SLUICE_JWT_SECRET": JWT_SECRET,
        "SLUICE_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "SLUICE_ADMIN_USER": ADMIN_USER,
        "SLUICE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SLUICE_PASSWORD_COST": "10",
        "SLUICE_DB_BACKOFF_MAX": "300ms",
        "SLUICE_DB_TIMEOUT": "3s",
    }
    for k, v in overrides.items():   # None removes a default
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return port, env


def start_api(daemons, dsn, redis_url, wait_ready=True, **overrides):
    port, env = api_env(dsn, redis_url, **overrides)
    d = daemons("api", env)
    api = Api(d, port, env)
    if wait_ready:
        wait_for(d.ready, timeout=15, what="api /readyz")
        # the first admin is inserted right after the database comes up
        wait_for(lambda: api.call("POST", "/v1/auth/login", json_body={
            "username": ADMIN_USER, "password": ADMIN_PASSWORD}).status_code == 200,
            timeout=10, what="the bootstrap admin")
    return api


@pytest.fixture
def api_factory(daemons, postgres_db, redis_server):
    """start(**SLUICE_overrides) -> Api, on this test's database and Redis."""
    def start(dsn=None, wait_ready=True, **overrides):
        return start_api(daemons, dsn or postgres_db, redis_server.url,
                         wait_ready=wait_ready, **overrides)
    return start


@pytest.fixture
def api(api_factory):
    return api_factory()


# An event the api publishes before it replies reaches a test's subscriber
# right after the reply, not always before it: Redis answers a PUBLISH and
# writes the message to the subscribers in one pass of its loop, the PUBLISH
# reply first, and a loaded machine may preempt it in between. So tests allow
# this grace; test_api_streams.py::test_reply_waits_for_the_event proves the
# order strictly (Redis's writes held, the reply waits for them).
EVENT_GRACE_S = 0.2


def pending_event(ps):
    """The next event on the subscriber <ps>, published before the reply the
    test just had (see EVENT_GRACE_S)."""
    msg = ps.get_message(timeout=EVENT_GRACE_S)
    assert msg is not None, "the event was not published before the reply"
    return json.loads(msg["data"])


def assert_error(r, status, code=None):
    """A JSON error reply: {"error": code, "message": text}, nothing else."""
    assert r.status_code == status, f"{r.status_code} {r.text}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error", "message"}, body
    if code is not None:
        assert body["error"] == code, body
    for leak in ("SELECT", "INSERT", "syntax", "relation", "SQLSTATE", "violates"):
        assert leak not in body["message"], body
    return body
