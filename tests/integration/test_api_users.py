"""sluice-api: users, for admins."""
from api_fixtures import ADMIN_USER, api, api_factory, assert_error


def test_create_list_delete(api):
    u = api.create_user("alice", role="admin")
    assert set(u) == {"id", "username", "role", "created_at"}
    assert u["role"] == "admin" and u["username"] == "alice"
    assert "password" not in str(u) and "scrypt" not in str(u)
    api.create_user("bob")
    users = api.call("GET", "/v1/users", token=api.admin).json()
    assert [x["username"] for x in users["users"]] == [ADMIN_USER, "alice", "bob"]
    assert users["next"] is None
    assert api.call("DELETE", f"/v1/users/{u['id']}", token=api.admin).status_code == 204
    names = [x["username"] for x in api.call("GET", "/v1/users", token=api.admin).json()["users"]]
    assert names == [ADMIN_USER, "bob"]
    # the new admin could log in, the deleted one no longer can
    assert_error(api.call("POST", "/v1/auth/login",
                          json_body={"username": "alice", "password": "password-1"}), 401)


def test_paging(api):
    for i in range(5):
        api.create_user(f"user{i}")
    page = api.call("GET", "/v1/users?limit=4", token=api.admin).json()
    assert len(page["users"]) == 4
    rest = api.call("GET", f"/v1/users?limit=4&after={page['next']}", token=api.admin).json()
    assert [u["username"] for u in rest["users"]] == ["user3", "user4"]
    assert rest["next"] is None
    for bad in ("limit=0", "limit=1001", "limit=x", "after=x", "after=-1"):
        assert_error(api.call("GET", f"/v1/users?{bad}", token=api.admin), 400)


def test_refusals(api):
    api.create_user("bob")
    dup = api.call("POST", "/v1/users", token=api.admin,
                   json_body={"username": "bob", "password": "password-2"})
    assert_error(dup, 409, "conflict")
    for body in ({"username": "carol"},
                 {"username": "carol", "password": "short"},
                 {"username": "carol", "password": "password-1", "role": "root"},
                 {"username": "carol smith", "password": "password-1"},
                 {"username": "c" * 65, "password": "password-1"},
                 {"username": "carol", "password": "p" * 1025},
                 {"username": "carol", "password": "password-1", "admin": True}):
        assert_error(api.call("POST", "/v1/users", token=api.admin, json_body=body), 400)


def test_delete_refusals(api):
    me = api.call("GET", "/v1/users", token=api.admin).json()["users"][0]
    assert_error(api.call("DELETE", f"/v1/users/{me['id']}", token=api.admin), 409)
    for missing in ("999999", "0", "-1", "abc", "1e3", "99999999999999999999"):
        assert_error(api.call("DELETE", f"/v1/users/{missing}", token=api.admin), 404)
    owner = api.create_user("owner")
    token = api.login("owner", "password-1")
    api.create_stream("owned", token=token)
    assert_error(api.call("DELETE", f"/v1/users/{owner['id']}", token=api.admin), 409)
    assert api.call("DELETE", "/v1/streams/owned", token=api.admin).status_code == 204
    assert api.call("DELETE", f"/v1/users/{owner['id']}", token=api.admin).status_code == 204


def test_admin_from_environment_is_not_overwritten(api_factory, postgres_db):
    first = api_factory(dsn=postgres_db)
    first.daemon.stop()
    # a restart with another password leaves the existing admin alone
    second = api_factory(dsn=postgres_db, SLUICE_ADMIN_PASSWORD="another-password",
                         wait_ready=False)
    from conftest import wait_for
    wait_for(second.daemon.ready, timeout=15, what="ready")
    wait_for(lambda: "exists" in second.daemon.log_text(), timeout=10, what="bootstrap")
    assert second.login(ADMIN_USER, "admin-password-1")
