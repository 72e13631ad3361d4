"""sluice-api: the audit log. Every change made through the API writes one
row (who, what, when, from where), in the same statement as the change;
refused and failed changes write none; admins read it with GET /v1/audit."""
import datetime

import psycopg2
import pytest

from api_fixtures import ADMIN_USER, api, api_factory, assert_error


def entries(api, query=""):
    r = api.call("GET", f"/v1/audit{query}", token=api.admin)
    assert r.status_code == 200, r.text
    return r.json()


def actions(api, query=""):
    return [(e["action"], e["target"]) for e in entries(api, query)["entries"]]


def sql(dsn, statement, args=()):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(statement, args or None)
        return cur.fetchall() if cur.description else None


def test_every_change_is_audited(api, postgres_db):
    admin_id = api.call("GET", "/v1/users", token=api.admin).json()["users"][0]["id"]
    alice = api.create_user("alice")
    s = api.create_stream("cam1", title="One", passphrase="secret-passphrase", record=True)
    api.call("PATCH", "/v1/streams/cam1", token=api.admin,
             json_body={"title": "Two", "passphrase": None, "disabled": True})
    api.call("POST", "/v1/streams/cam1/key", token=api.admin)
    api.call("PATCH", "/v1/streams/cam1", token=api.admin, json_body={"disabled": False})
    r = api.call("POST", "/v1/streams/cam1/sessions", token=api.admin,
                 json_body={"mode": "request"})
    assert r.status_code == 201, r.text
    session_id = r.json()["session_id"]
    assert api.call("DELETE", "/v1/streams/cam1", token=api.admin).status_code == 204
    assert api.call("DELETE", f"/v1/users/{alice['id']}", token=api.admin).status_code == 204

    log = entries(api)
    assert log["next"] is None
    got = [(e["action"], e["target"]) for e in log["entries"]]
    assert got == [("user.deleted", "alice"), ("stream.deleted", "cam1"),
                   ("session.created", "cam1"), ("stream.updated", "cam1"),
                   ("key.rotated", "cam1"), ("stream.updated", "cam1"),
                   ("stream.created", "cam1"), ("user.created", "alice"),
                   ("user.created", ADMIN_USER)]
    ids = [e["id"] for e in log["entries"]]
    assert ids == sorted(ids, reverse=True)
    by_us = log["entries"][:-1]
    for e in by_us:
        assert e["actor"] == ADMIN_USER and e["actor_id"] == admin_id, e
        assert e["client"] == "127.0.0.1", e
        at = datetime.datetime.fromisoformat(e["at"].replace("Z", "+00:00"))
        assert abs((datetime.datetime.now(datetime.timezone.utc) - at).total_seconds()) < 60
    assert log["entries"][6]["details"] == {"owner": ADMIN_USER, "title": "One",
                                            "category": "", "passphrase": True,
                                            "disabled": False, "record": True}
    assert log["entries"][5]["details"] == {"title": "Two", "passphrase": "removed",
                                            "disabled": True}
    assert log["entries"][3]["details"] == {"disabled": False}
    assert log["entries"][2]["details"]["mode"] == "request"
    assert log["entries"][7]["details"] == {"id": alice["id"], "role": "publisher"}
    assert log["entries"][0]["details"] == {"id": alice["id"], "role": "publisher"}
    # the first admin, made at start-up, by no one
    boot = log["entries"][-1]
    assert boot["actor_id"] is None and boot["actor"] == "(admin-user setting)"
    assert boot["details"]["role"] == "admin"
    # secrets never reach the log
    text = str(log)
    for secret in (s["key"], "secret-passphrase", session_id):
        assert secret not in text
    assert sql(postgres_db, "SELECT count(*) FROM audit_log")[0][0] == 9


def test_refused_and_failed_changes_write_nothing(api):
    api.create_user("bob")
    bob = api.login("bob", "password-1")
    api.create_stream("cam1", owner="bob")
    before = entries(api)["entries"]
    calls = [
        ("POST", "/v1/streams", api.admin, {"name": "cam1"}, 409),          # taken
        ("POST", "/v1/streams", api.admin, {"name": "bad name"}, 400),
        ("POST", "/v1/streams", api.admin, {"name": "x", "owner": "nobody"}, 400),
        ("POST", "/v1/streams", bob, {"name": "x", "owner": ADMIN_USER}, 403),
        ("PATCH", "/v1/streams/nope", api.admin, {"title": "t"}, 404),
        ("PATCH", "/v1/streams/cam1", api.admin, {"title": 5}, 400),
        ("DELETE", "/v1/streams/nope", api.admin, None, 404),
        ("POST", "/v1/streams/nope/key", api.admin, None, 404),
        ("POST", "/v1/streams/nope/sessions", api.admin, {"mode": "publish"}, 404),
        ("POST", "/v1/users", api.admin, {"username": "bob", "password": "password-2"}, 409),
        ("POST", "/v1/users", bob, {"username": "eve", "password": "password-2"}, 403),
        ("DELETE", "/v1/users/999999", api.admin, None, 404),
        ("DELETE", "/v1/recordings/nope", api.admin, None, 404),
    ]
    bob_id = next(u["id"] for u in api.call("GET", "/v1/users", token=api.admin)
                  .json()["users"] if u["username"] == "bob")
    calls.append(("DELETE", f"/v1/users/{bob_id}", api.admin, None, 409))   # owns cam1
    for method, path, token, body, status in calls:
        assert_error(api.call(method, path, token=token, json_body=body), status)
    assert entries(api)["entries"] == before


def test_the_change_and_its_row_commit_together(api, postgres_db):
    """With the audit insert made to fail (a trigger of the test's own), the
    change it belongs to does not happen either."""
    sql(postgres_db, """
        CREATE FUNCTION refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.target LIKE 'doomed%' THEN RAISE EXCEPTION 'no'; END IF;
        RETURN NEW; END $$;
        CREATE TRIGGER refuse_doomed BEFORE INSERT ON audit_log
        FOR EACH ROW EXECUTE FUNCTION refuse_doomed();""")
    assert_error(api.call("POST", "/v1/streams", token=api.admin,
                          json_body={"name": "doomed"}), 500, "internal")
    assert_error(api.call("GET", "/v1/streams/doomed", token=api.admin), 404)
    assert_error(api.call("POST", "/v1/users", token=api.admin,
                          json_body={"username": "doomed-user", "password": "password-1"}),
                 500)
    assert "doomed-user" not in api.call("GET", "/v1/users", token=api.admin).text
    # a session whose row cannot be written is never shown, and is gone
    sql(postgres_db, "INSERT INTO streams (name, owner_id, auth_version)"
                     " VALUES ('doomed1', (SELECT id FROM users LIMIT 1), 0)")
    r = api.call("POST", "/v1/streams/doomed1/sessions", token=api.admin,
                 json_body={"mode": "publish"})
    assert_error(r, 500)
    assert "ss_" not in r.text
    import redis as redis_mod
    client = redis_mod.Redis.from_url(api.env["SLUICE_REDIS_URL"], decode_responses=True)
    assert client.keys("sluice:session:*") == []   # deleted, not left to expire


def test_filters_and_paging(api):
    for i in range(5):
        api.create_stream(f"s{i}")
    api.create_user("carol")
    api.call("POST", "/v1/streams/s1/key", token=api.admin)
    assert actions(api, "?action=key.rotated") == [("key.rotated", "s1")]
    assert [a for a, _ in actions(api, "?target=s1")] == ["key.rotated", "stream.created"]
    assert len(entries(api, f"?actor={ADMIN_USER}")["entries"]) == 7
    assert entries(api, "?actor=nobody")["entries"] == []
    page = entries(api, "?limit=3")
    assert len(page["entries"]) == 3 and page["next"] == page["entries"][-1]["id"]
    rest = entries(api, f"?limit=3&after={page['next']}")
    assert [e["id"] for e in rest["entries"]] == [page["next"] - k for k in (1, 2, 3)]
    seen = page["entries"] + rest["entries"]
    last = entries(api, f"?limit=3&after={rest['next']}")
    assert last["next"] is None and len(seen) + len(last["entries"]) == 8
    now = datetime.datetime.now(datetime.timezone.utc)
    past = (now - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = (now + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")
    assert len(entries(api, f"?since={past}")["entries"]) == 8
    assert entries(api, f"?until={past}")["entries"] == []
    assert entries(api, "?since=" + future.replace("+", "%2B"))["entries"] == []
    assert len(entries(api, f"?since={past}&action=stream.created&limit=2")["entries"]) == 2
    for bad in ("action=stream.exploded", "action=", "since=yesterday", "until=now",
                "since=2026-02-30T00:00:00Z", "limit=0", "limit=1001", "limit=100000",
                "after=x", "after=0", "after=-3", "target=" + "x" * 129, "actor=%01"):
        assert_error(api.call("GET", f"/v1/audit?{bad}", token=api.admin), 400, "bad_request")


def test_injection_in_filters(api):
    api.create_stream("cam1")
    for s in ("'; DROP TABLE audit_log; --", "x' OR '1'='1", "$1", "\\'"):
        for key in ("actor", "target"):
            r = api.call("GET", "/v1/audit", token=api.admin, params={key: s})
            assert r.status_code == 200 and r.json()["entries"] == [], r.text
    assert len(entries(api)["entries"]) == 2


def test_admins_only(api):
    api.create_user("pub")
    pub = api.login("pub", "password-1")
    assert_error(api.call("GET", "/v1/audit", token=pub), 403, "forbidden")
    assert_error(api.call("GET", "/v1/audit"), 401, "unauthorized")
    assert_error(api.call("POST", "/v1/audit", token=api.admin, json_body={}), 405)


def test_client_address_behind_a_proxy(api_factory):
    api = api_factory(SLUICE_TRUST_PROXY="true")
    h = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}
    r = api.call("POST", "/v1/streams", token=api.admin, json_body={"name": "cam1"}, headers=h)
    assert r.status_code == 201
    e = entries(api, "?action=stream.created")["entries"][0]
    assert e["client"] == "203.0.113.7"


def test_append_only(api, postgres_db):
    api.create_stream("cam1")
    for statement in ("UPDATE audit_log SET actor = 'someone else'",
                      "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(psycopg2.Error, match="append-only"):
            sql(postgres_db, statement)
    assert len(entries(api)["entries"]) == 2
