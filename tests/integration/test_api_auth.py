"""sluice-api: login, bearer tokens (every forgery libjwt 1.10 alone would let
through), roles, throttling, and refusing to start without strong secrets."""
import hashlib
import os
import subprocess
import time

from api_fixtures import (ADMIN_PASSWORD, ADMIN_USER, INTERNAL_TOKEN, JWT_SECRET,
                          api, api_factory, assert_error, claims_for, forge_jwt)
from conftest import BIN


def test_login_returns_a_working_token(api):
    r = api.call("POST", "/v1/auth/login",
                 json_body={"username": ADMIN_USER, "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"token", "expires_at", "user"}
    assert body["user"]["username"] == ADMIN_USER and body["user"]["role"] == "admin"
    assert body["expires_at"].endswith("Z")
    assert api.call("GET", "/v1/users", token=body["token"]).status_code == 200


def test_login_refusals(api):
    bad = [({"username": ADMIN_USER, "password": "wrong-password"}, 401),
           ({"username": "nobody", "password": ADMIN_PASSWORD}, 401),
           ({"username": ADMIN_USER}, 400),
           ({"username": ADMIN_USER, "password": 12345678}, 400),
           ({"username": ADMIN_USER, "password": ADMIN_PASSWORD, "otp": "1"}, 400)]
    for body, status in bad:
        assert_error(api.call("POST", "/v1/auth/login", json_body=body), status)
    assert_error(api.call("GET", "/v1/auth/login"), 405)


def test_unknown_user_costs_a_password_hash(api):
    """An unknown user is checked against a dummy hash, so that the time of an
    answer does not tell which user names exist. Counted, not timed: timing
    assertions fail on a loaded machine."""
    def checks(kind):
        return api.daemon.metrics().get(
            f'sluice_api_password_checks_total{{user="{kind}"}}', 0)
    before_known, before_unknown = checks("known"), checks("unknown")
    for i in range(3):
        r = api.call("POST", "/v1/auth/login", json_body={"username": f"ghost{i}", "password": "x"})
        assert r.status_code == 401
    r = api.call("POST", "/v1/auth/login", json_body={"username": ADMIN_USER, "password": "x"})
    assert r.status_code == 401
    assert checks("unknown") == before_unknown + 3
    assert checks("known") == before_known + 1


def now():
    return int(time.time())


def test_forged_tokens_are_refused(api):
    admin_id = 1
    good = forge_jwt(claims_for(admin_id, ADMIN_USER, "admin"))
    assert api.call("GET", "/v1/users", token=good).status_code == 200  # the control
    forged = {
        "alg none": forge_jwt(claims_for(admin_id, ADMIN_USER, "admin"),
                              header={"alg": "none", "typ": "JWT"}, digest=None),
        "alg none, signed": forge_jwt(claims_for(admin_id, ADMIN_USER, "admin"),
                                      header={"alg": "none"}),
        "HS512 with the secret": forge_jwt(claims_for(admin_id, ADMIN_USER, "admin"),
                                           alg="HS512", digest=hashlib.sha512),
        "HS512 header, HS256 signature": forge_jwt(claims_for(admin_id, ADMIN_USER, "admin"),
                                                   alg="HS512"),
        "empty key": forge_jwt(claims_for(admin_id, ADMIN_USER, "admin"), key=b""),
        "another key": forge_jwt(claims_for(admin_id, ADMIN_USER, "admin"),
                                 key=b"x" * len(JWT_SECRET)),
        "the service token as key": forge_jwt(claims_for(admin_id, ADMIN_USER, "admin"),
                                              key=INTERNAL_TOKEN.encode()),
        "expired": forge_jwt(claims_for(admin_id, ADMIN_USER, "admin", now=now() - 7200)),
        "not yet valid": forge_jwt(claims_for(admin_id, ADMIN_USER, "admin",
                                              nbf=now() + 3600)),
        "exp as a string": forge_jwt(claims_for(admin_id, ADMIN_USER, "admin",
                                                exp=str(now() + 3600))),
        "no exp": forge_jwt({"iss": "sluice", "sub": "1", "name": ADMIN_USER,
                             "role": "admin", "nbf": now()}),
        "other issuer": forge_jwt(claims_for(admin_id, ADMIN_USER, "admin", iss="evil")),
        "garbage": "not-a-token",
        "tampered": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
    }
    # the same signature on other claims
    other = forge_jwt(claims_for(2, "someone", "admin"))
    forged["claims swapped"] = other.rsplit(".", 1)[0] + "." + good.rsplit(".", 1)[1]
    for what, token in forged.items():
        r = api.call("GET", "/v1/users", token=token)
        assert r.status_code == 401, f"{what}: {r.status_code} {r.text}"
        assert_error(r, 401, "unauthorized")
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "expired" in api.call("GET", "/v1/users",
                                 token=forged["expired"]).json()["message"]


def test_missing_or_wrong_authorization(api):
    assert_error(api.call("GET", "/v1/streams"), 401, "unauthorized")
    assert_error(api.call("GET", "/v1/streams", headers={"Authorization": "Basic eDp5"}),
                 401)
    assert_error(api.call("GET", "/v1/streams", headers={"Authorization": "Bearer "}), 401)
    assert_error(api.call("GET", "/v1/streams", token="x" * 5000), 401)


def test_token_of_a_deleted_user_stops_working(api):
    user = api.create_user("leaver")
    token = api.login("leaver", "password-1")
    assert api.call("GET", "/v1/streams", token=token).status_code == 200
    assert api.call("DELETE", f"/v1/users/{user['id']}", token=api.admin).status_code == 204
    assert_error(api.call("GET", "/v1/streams", token=token), 401)
    # even a well-signed token naming that id
    forged = forge_jwt(claims_for(user["id"], "leaver", "publisher"))
    assert_error(api.call("GET", "/v1/streams", token=forged), 401)


def test_role_comes_from_the_database_not_the_token(api):
    user = api.create_user("pub")
    # a validly signed token that claims admin for a publisher: the server
    # checks the role in the database on every request
    forged = forge_jwt(claims_for(user["id"], "pub", "admin"))
    assert_error(api.call("GET", "/v1/users", token=forged), 403, "forbidden")


def test_publishers_cannot_manage_users(api):
    api.create_user("pub")
    token = api.login("pub", "password-1")
    assert_error(api.call("GET", "/v1/users", token=token), 403, "forbidden")
    assert_error(api.call("POST", "/v1/users", token=token,
                          json_body={"username": "x", "password": "password-1"}), 403)
    assert_error(api.call("DELETE", "/v1/users/1", token=token), 403)


def test_five_failures_for_a_user_lock_it(api_factory):
    # from five addresses, so that only the user's own count can lock
    api = api_factory(SLUICE_TRUST_PROXY="true", SLUICE_LOGIN_LOCKOUT="2s")
    api.create_user("victim")

    def login(user, password, addr):
        return api.call("POST", "/v1/auth/login", headers={"X-Forwarded-For": addr},
                        json_body={"username": user, "password": password})
    for i in range(5):
        assert_error(login("victim", "guess", f"192.0.2.{i}"), 401)
    r = login("victim", "password-1", "192.0.2.100")
    assert_error(r, 429, "too_many_requests")
    assert 1 <= int(r.headers["Retry-After"]) <= 2
    # other users are not locked out by it
    assert login(ADMIN_USER, ADMIN_PASSWORD, "192.0.2.101").status_code == 200
    time.sleep(2.1)
    assert login("victim", "password-1", "192.0.2.100").status_code == 200


def test_five_failures_from_an_address_lock_it(api_factory):
    api = api_factory(SLUICE_LOGIN_LOCKOUT="2s")
    for i in range(5):
        assert_error(api.call("POST", "/v1/auth/login",
                              json_body={"username": f"spray{i}", "password": "guess"}), 401)
    assert_error(api.call("POST", "/v1/auth/login", json_body={
        "username": ADMIN_USER, "password": ADMIN_PASSWORD}), 429)


def test_forwarded_for_counts_only_behind_a_trusted_proxy(api_factory):
    api = api_factory(SLUICE_TRUST_PROXY="true", SLUICE_LOGIN_LOCKOUT="2s")
    for i in range(5):
        api.call("POST", "/v1/auth/login", headers={"X-Forwarded-For": "203.0.113.9"},
                 json_body={"username": f"spray{i}", "password": "guess"})
    assert_error(api.call("POST", "/v1/auth/login",
                          headers={"X-Forwarded-For": "203.0.113.9"},
                          json_body={"username": ADMIN_USER, "password": ADMIN_PASSWORD}),
                 429)
    # another client behind the same proxy is not locked out
    assert api.call("POST", "/v1/auth/login", headers={"X-Forwarded-For": "198.51.100.1"},
                    json_body={"username": ADMIN_USER,
                               "password": ADMIN_PASSWORD}).status_code == 200


def run_refused(env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    base.update({"SLUICE_LISTEN": "127.0.0.1:0", "SLUICE_ADMIN_LISTEN": "127.0.0.1:0",
                 "SLUICE_DATABASE_URL": "postgresql://127.0.0.1:1/none",
                 "SLUICE_REDIS_URL": "redis://127.0.0.1:1"})
    base.update(env)
    p = subprocess.run([str(BIN / "sluice-api")], env=base, timeout=20,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def test_refuses_to_start_without_strong_secrets():
    cases = [
        {"SLUICE_INTERNAL_TOKEN": INTERNAL_TOKEN},                              # no JWT secret
        {"SLUICE_JWT_SECRET": "", "SLUICE_INTERNAL_TOKEN": INTERNAL_TOKEN},
        {"SLUICE_JWT_SECRET": "x" * 31, "SLUICE_INTERNAL_TOKEN": INTERNAL_TOKEN},
        {"SLUICE_JWT_SECRET": JWT_SECRET},                                      # no token
        {"SLUICE_JWT_SECRET": JWT_SECRET, "SLUICE_INTERNAL_TOKEN": "short"},
        {"SLUICE_JWT_SECRET": JWT_SECRET, "SLUICE_INTERNAL_TOKEN": INTERNAL_TOKEN,
         "SLUICE_ADMIN_USER": "admin", "SLUICE_ADMIN_PASSWORD": "short"},
        {"SLUICE_JWT_SECRET": JWT_SECRET, "SLUICE_INTERNAL_TOKEN": INTERNAL_TOKEN,
         "SLUICE_ADMIN_USER": "bad name", "SLUICE_ADMIN_PASSWORD": "long-enough"},
    ]
    for env in cases:
        code, out = run_refused(env)
        assert code == 1, (env, out)
        assert "AddressSanitizer" not in out and "LeakSanitizer" not in out, out


def test_secrets_from_files(api_factory, tmp_path):
    secret = tmp_path / "jwt"
    secret.write_text(JWT_SECRET + "\n")
    api = api_factory(SLUICE_JWT_SECRET=None, SLUICE_JWT_SECRET_FILE=str(secret))
    token = api.admin
    assert api.call("GET", "/v1/users", token=token).status_code == 200
