"""sluice-api: the login throttle holds across replicas (failures counted in
Redis, docs/redis.md), and falls back to each replica's own table when Redis
is down or slow."""
import concurrent.futures
import time

import requests

from api_fixtures import ADMIN_PASSWORD, ADMIN_USER, api_factory, assert_error
from conftest import free_port, wait_for

USER_KEY = "sluice:throttle:login:user:"
ADDR_KEY = "sluice:throttle:login:addr:"
# short enough for a test to outwait, long enough that nothing expires under it
SETTINGS = {"SLUICE_TRUST_PROXY": "true", "SLUICE_LOGIN_LOCKOUT": "3s",
            "SLUICE_LOGIN_WINDOW": "1m"}


def login(api, user, password, addr=None):
    headers = {"X-Forwarded-For": addr} if addr else None
    return api.call("POST", "/v1/auth/login", headers=headers,
                    json_body={"username": user, "password": password})


def metric(api, name, **labels):
    key = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
                  if labels else "")
    return api.daemon.metrics().get(key, 0)


def hits(api, scope):
    return metric(api, "sluice_api_login_throttle_hits_total", scope=scope)


def fallbacks(api):
    m = api.daemon.metrics()
    return sum(v for k, v in m.items()
               if k.startswith("sluice_api_login_throttle_fallbacks_total"))


def assert_throttled(r, longest_s):
    body = assert_error(r, 429, "too_many_requests")
    wait = int(r.headers["Retry-After"])
    assert 1 <= wait <= longest_s, r.headers
    assert f"try again in {wait} s" in body["message"], body
    return wait


def test_failures_spread_over_replicas_lock_the_user_everywhere(api_factory, redis_server):
    a = api_factory(**SETTINGS)
    b = api_factory(**SETTINGS)
    a.create_user("victim")
    # from five addresses, so that only the user's count can lock; 3 + 2 stay
    # under each replica's own limit
    for i in range(3):
        assert_error(login(a, "victim", "guess", f"192.0.2.{i}"), 401)
    for i in range(3, 5):
        assert_error(login(b, "victim", "guess", f"192.0.2.{i}"), 401)
    # the right password now: refused on either replica, from a fresh address
    assert_throttled(login(a, "victim", "password-1", "198.51.100.1"), 3)
    wait = assert_throttled(login(b, "victim", "password-1", "198.51.100.2"), 3)
    # A learns of the lock from Redis; B, whose failure set it, holds a copy
    # in its own table, which refuses first
    assert hits(a, "shared") == 1 and hits(b, "local") == 1
    assert hits(a, "local") == 0 and hits(b, "shared") == 0
    assert fallbacks(a) == 0 and fallbacks(b) == 0
    # the lock as docs/redis.md has it
    rc = redis_server.client()
    assert rc.hgetall(USER_KEY + "victim") == {"locked": "1"}
    assert 0 < rc.pttl(USER_KEY + "victim") <= 3000
    # logged once, by the replica whose failure set it
    logs = a.daemon.log_text() + b.daemon.log_text()
    assert logs.count("user victim locked on every replica") == 1, logs[-3000:]
    # another user is not affected, on either replica
    assert login(a, ADMIN_USER, ADMIN_PASSWORD, "198.51.100.3").status_code == 200
    assert login(b, ADMIN_USER, ADMIN_PASSWORD, "198.51.100.3").status_code == 200
    # once the lock is over, the right password works, and wipes the count
    time.sleep(wait)
    wait_for(lambda: login(b, "victim", "password-1", "198.51.100.4").status_code == 200,
             timeout=5, what="the lockout to end")
    assert rc.exists(USER_KEY + "victim") == 0
    assert login(a, "victim", "password-1", "198.51.100.4").status_code == 200


def test_failures_from_one_address_spread_over_replicas_lock_it(api_factory, redis_server):
    a = api_factory(**SETTINGS)
    b = api_factory(**SETTINGS)
    for i in range(5):
        api = a if i % 2 == 0 else b
        assert_error(login(api, f"spray{i}", "guess", "203.0.113.9"), 401)
    for api in (a, b):
        assert_throttled(login(api, ADMIN_USER, ADMIN_PASSWORD, "203.0.113.9"), 3)
    # another client behind the same proxy is not
    assert login(a, ADMIN_USER, ADMIN_PASSWORD, "203.0.113.10").status_code == 200
    assert redis_server.client().hgetall(ADDR_KEY + "203.0.113.9") == {"locked": "1"}


def test_parallel_guesses_over_replicas_cannot_overshoot(api_factory):
    """Attempts in flight are reserved in Redis before the hash starts: ten
    guesses at once, five to each replica, get at most five password checks
    (each replica alone would have let five through)."""
    settings = dict(SETTINGS, SLUICE_LOGIN_REDIS_WAIT="2s", SLUICE_PASSWORD_COST="12")
    a = api_factory(**settings)
    b = api_factory(**settings)
    a.create_user("victim")
    checks = [metric(x, "sluice_api_password_checks_total", user="known") for x in (a, b)]
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(
            lambda i: login(a if i % 2 else b, "victim", "guess", f"192.0.2.{i}"), range(10)))
    statuses = sorted(r.status_code for r in replies)
    assert set(statuses) <= {401, 429}, statuses
    assert 1 <= statuses.count(401) <= 5, statuses
    for r in replies:
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
    after = [metric(x, "sluice_api_password_checks_total", user="known") for x in (a, b)]
    assert sum(after) - sum(checks) == statuses.count(401)
    assert fallbacks(a) == 0 and fallbacks(b) == 0


def test_keys_count_failures_and_release_attempts(api_factory, redis_server):
    api = api_factory(**SETTINGS)
    rc = redis_server.client()
    assert_error(login(api, "a b%", "guess", "2001:db8::7"), 401)
    # an IPv6 address counts as its /64 ('/' escaped, as docs/redis.md has it)
    user, addr = USER_KEY + "a%20b%25", ADDR_KEY + "2001:db8::%2F64"
    assert rc.hgetall(user) == {"failures": "1", "inflight": "0"}
    assert rc.hgetall(addr) == {"failures": "1", "inflight": "0"}
    assert 0 < rc.pttl(user) <= 60000 and 0 < rc.pttl(addr) <= 60000
    # a success wipes its user's count, not its address's
    assert_error(login(api, ADMIN_USER, "guess", "2001:db8::7"), 401)
    assert rc.hgetall(USER_KEY + ADMIN_USER)["failures"] == "1"
    assert login(api, ADMIN_USER, ADMIN_PASSWORD, "2001:db8::7").status_code == 200
    assert rc.exists(USER_KEY + ADMIN_USER) == 0
    assert rc.hgetall(addr) == {"failures": "2", "inflight": "0"}


def test_without_redis_each_replica_throttles_alone(api_factory, redis_server):
    api = api_factory(**SETTINGS)
    api.create_user("victim")
    redis_server.stop()
    wait_for(lambda: metric(api, "sluice_api_redis_up") == 0, timeout=10,
             what="the api to see Redis gone")
    # logins keep working
    assert login(api, ADMIN_USER, ADMIN_PASSWORD, "198.51.100.1").status_code == 200
    for i in range(5):
        assert_error(login(api, "victim", "guess", f"192.0.2.{i}"), 401)
    assert_throttled(login(api, "victim", "password-1", "198.51.100.2"), 3)
    assert hits(api, "local") == 1 and hits(api, "shared") == 0
    assert metric(api, "sluice_api_login_throttle_fallbacks_total", reason="down") >= 6
    assert "user victim locked on this replica" in api.daemon.log_text()
    # other users still log in
    assert login(api, ADMIN_USER, ADMIN_PASSWORD, "198.51.100.3").status_code == 200
    # Redis back: the shared count works again
    redis_server.start()
    wait_for(lambda: metric(api, "sluice_api_redis_up") == 1, timeout=15,
             what="the api to reconnect")
    assert_error(login(api, "other", "guess", "192.0.2.50"), 401)
    assert redis_server.client().hget(USER_KEY + "other", "failures") == "1"


def test_slow_redis_does_not_hold_a_login(api_factory, redis_server):
    """Redis paused past login-redis-wait: the login goes on with the local
    table; the reservation Redis makes later is released when it answers."""
    api = api_factory(**SETTINGS)
    rc = redis_server.client()
    rc.client_pause(1500)   # every client of this Redis, ours too, for 1.5 s
    r = login(api, ADMIN_USER, ADMIN_PASSWORD, "198.51.100.5")
    assert r.status_code == 200, r.text
    assert metric(api, "sluice_api_login_throttle_fallbacks_total", reason="slow") == 1
    # once Redis runs the late script, the attempt's end follows it: the
    # user's count is gone (a success), the address holds nothing in flight
    addr = ADDR_KEY + "198.51.100.5"
    wait_for(lambda: rc.hget(addr, "inflight") == "0", timeout=10,
             what="the late reservation released")
    assert rc.exists(USER_KEY + ADMIN_USER) == 0


def test_stopping_while_redis_has_not_answered(api_factory, redis_server):
    """A login that went on without Redis, then SIGTERM before Redis answers
    its begin script: the api exits cleanly (no leak, no late use)."""
    api = api_factory(**SETTINGS)
    rc = redis_server.client()
    rc.client_pause(2000)
    assert_error(login(api, ADMIN_USER, "guess", "198.51.100.6"), 401)
    assert login(api, ADMIN_USER, ADMIN_PASSWORD, "198.51.100.6").status_code == 200
    assert metric(api, "sluice_api_login_throttle_fallbacks_total", reason="slow") == 2
    api.daemon.stop()   # checks the exit status and the sanitizer report


def test_an_ipv6_client_is_throttled_by_its_slash_64(api_factory, redis_server):
    """A client that rotates through its /64, a fresh address per guess, is
    counted once. Loopback has a single IPv6 address (::1), so the addresses
    come through trust-proxy's X-Forwarded-For, as behind Traefik."""
    a = api_factory(**SETTINGS)
    b = api_factory(**SETTINGS)
    rotating = ["2001:db8:1:2::1", "2001:db8:1:2:ffff::7", "2001:0db8:0001:0002::a:b",
                "2001:db8:1:2:1:2:3:4", "2001:DB8:1:2::FFFF"]
    for i, addr in enumerate(rotating):
        assert_error(login(a if i % 2 else b, f"spray{i}", "guess", addr), 401)
    # any address of that /64 is refused, on either replica
    assert_throttled(login(a, ADMIN_USER, ADMIN_PASSWORD, "2001:db8:1:2::99"), 3)
    assert_throttled(login(b, ADMIN_USER, ADMIN_PASSWORD, "2001:db8:1:2:a:b:c:d"), 3)
    rc = redis_server.client()
    assert rc.hgetall(ADDR_KEY + "2001:db8:1:2::%2F64") == {"locked": "1"}
    assert not [k for k in rc.keys(ADDR_KEY + "*") if "::1" in k or "ffff" in k]
    logs = a.daemon.log_text() + b.daemon.log_text()
    assert logs.count("address 2001:db8:1:2::/64 locked on every replica") == 1, logs[-3000:]
    # the neighbouring /64 is another client
    assert login(a, ADMIN_USER, ADMIN_PASSWORD, "2001:db8:1:3::1").status_code == 200
    # B set the lock (the fifth failure) and holds a copy; A learnt it from Redis
    assert hits(a, "shared") == 1 and hits(b, "local") == 1


def test_a_mapped_ipv4_address_counts_as_the_ipv4(api_factory, redis_server):
    api = api_factory(**SETTINGS)
    for i in range(3):
        assert_error(login(api, f"spray{i}", "guess", "192.0.2.77"), 401)
    for i in range(3, 5):
        assert_error(login(api, f"spray{i}", "guess", "::ffff:192.0.2.77"), 401)
    assert_throttled(login(api, ADMIN_USER, ADMIN_PASSWORD, "192.0.2.77"), 3)
    assert redis_server.client().hgetall(ADDR_KEY + "192.0.2.77") == {"locked": "1"}


def test_the_peer_address_is_throttled_by_its_subject(api_factory, redis_server):
    """Without trust-proxy the subject is the TCP peer's. Listening on [::],
    a client of 127.0.0.1 arrives as ::ffff:127.0.0.1 and counts as
    127.0.0.1; a client of ::1 counts as ::/64. (Loopback has no second IPv6
    address, so two peers of one /64 are covered by the unit tests.)"""
    port = free_port()
    api = api_factory(wait_ready=False, SLUICE_LISTEN=f"[::]:{port}",
                      SLUICE_LOGIN_LOCKOUT="3s", SLUICE_LOGIN_WINDOW="1m")
    api.port, api.base = port, f"http://127.0.0.1:{port}"
    wait_for(api.daemon.ready, timeout=15, what="api /readyz")
    wait_for(lambda: login(api, ADMIN_USER, ADMIN_PASSWORD).status_code == 200,
             timeout=10, what="the bootstrap admin")
    for i in range(5):
        assert_error(login(api, f"spray{i}", "guess"), 401)
    assert_throttled(login(api, ADMIN_USER, ADMIN_PASSWORD), 3)
    rc = redis_server.client()
    assert rc.hgetall(ADDR_KEY + "127.0.0.1") == {"locked": "1"}
    assert rc.exists(ADDR_KEY + "::ffff:127.0.0.1") == 0
    # the same api over ::1: another subject, not locked
    r = requests.post(f"http://[::1]:{port}/v1/auth/login", timeout=10,
                      json={"username": ADMIN_USER, "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    assert rc.hgetall(ADDR_KEY + "::%2F64") == {"inflight": "0"}


def test_a_replica_that_saw_a_shared_lock_keeps_it_without_redis(api_factory,
                                                                 redis_server):
    """The user is locked in Redis by a failure on replica A, B sees the lock
    (a 429 from the shared count), then Redis goes away: both still refuse
    the right password from their own tables, though neither had counted five
    failures itself. Without the copy each would count afresh."""
    settings = dict(SETTINGS, SLUICE_LOGIN_LOCKOUT="60s")
    a = api_factory(**settings)
    b = api_factory(**settings)
    a.create_user("victim")
    # 3 failures on B, 2 on A: the fifth, on A, locks the user in Redis
    for i in range(5):
        assert_error(login(b if i < 3 else a, "victim", "guess", f"192.0.2.{i}"), 401)
    assert redis_server.client().hgetall(USER_KEY + "victim") == {"locked": "1"}
    assert_throttled(login(b, "victim", "password-1", "198.51.100.1"), 60)
    assert hits(b, "shared") == 1 and hits(b, "local") == 0
    redis_server.stop()
    for api in (a, b):
        wait_for(lambda api=api: metric(api, "sluice_api_redis_up") == 0, timeout=10,
                 what="the api to see Redis gone")
    # the right password, from fresh addresses: refused by each replica's table
    assert_throttled(login(a, "victim", "password-1", "198.51.100.2"), 60)
    assert_throttled(login(b, "victim", "password-1", "198.51.100.3"), 60)
    assert hits(a, "local") == 1 and hits(a, "shared") == 0
    assert hits(b, "local") == 1 and hits(b, "shared") == 1
    # refused before the count: no fallback to Redis was even tried
    assert metric(a, "sluice_api_login_throttle_fallbacks_total", reason="down") == 0
    assert metric(b, "sluice_api_login_throttle_fallbacks_total", reason="down") == 0
    # another user still logs in on both
    for api in (a, b):
        assert login(api, ADMIN_USER, ADMIN_PASSWORD, "198.51.100.4").status_code == 200
