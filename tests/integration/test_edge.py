"""sluice-edge against a real Redis and a test origin (httporigin.TestOrigin):
coalescing, cache freshness and eviction, 404 for streams that are not live,
stale-if-error, the shape of paths, CORS, HEAD, ranges, VOD, viewers, and a
clean drain on SIGTERM. The Redis outage has its own file."""
import concurrent.futures
import json
import threading
import time

import pytest
import requests

from conftest import free_port, wait_for
from httporigin import (TestOrigin, media_playlist, metric, raw_get, raw_request,
                        segment, sha)

SEGMENT = segment(1_000_000, seed=1)


@pytest.fixture
def origin():
    o = TestOrigin().start()
    o.set("/live/demo/index.m3u8", media_playlist(target=1, segments=["s0.ts", "s1.ts"]))
    o.set("/live/demo/s0.ts", SEGMENT)
    o.set("/live/demo/s1.ts", segment(200_000, seed=2))
    yield o
    o.stop()


class Edge:
    def __init__(self, daemon, port):
        self.daemon = daemon
        self.port = port

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path, **kw):
        return requests.get(self.url(path), timeout=kw.pop("timeout", 10), **kw)

    def metric(self, name, **labels):
        return metric(self.daemon, name, **labels)


def start_edge(daemons, redis_server, **settings):
    port = free_port()
    env = {"SLUICE_REDIS_URL": redis_server.url, "SLUICE_LISTEN": f"127.0.0.1:{port}",
           "SLUICE_ROUTE_TTL": "200ms", "SLUICE_NEGATIVE_TTL": "500ms",
           "SLUICE_PLAYLIST_TTL_MIN": "100ms", "SLUICE_ORIGIN_TIMEOUT": "2s",
           "SLUICE_ORIGIN_RETRY": "300ms", "SLUICE_REDIS_TIMEOUT": "500ms"}
    env.update({f"SLUICE_{k.upper()}": str(v) for k, v in settings.items()})
    return Edge(daemons("edge", env), port)


@pytest.fixture
def edge(daemons, redis_server, origin):
    origin.register(redis_server.client(), "demo")
    e = start_edge(daemons, redis_server)
    wait_for(e.daemon.ready, what="edge ready")
    return e


def assert_json_error(resp, status, code=None):
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    assert isinstance(body["message"], str)
    if code:
        assert body["error"] == code
    return body


# --------------------------------------------------------------------------
# Coalescing

def test_200_concurrent_misses_make_one_origin_request(daemons, redis_server, origin):
    """The issue's test: a slow origin, 200 viewers asking for the same segment
    at once; the origin sees one request and every viewer the same bytes."""
    origin.register(redis_server.client(), "demo")
    edge = start_edge(daemons, redis_server, origin_timeout="10s")
    origin.delay = 2.0
    n = 200
    barrier = threading.Barrier(n)

    def fetch(_):
        barrier.wait()
        r = requests.get(edge.url("/live/demo/s0.ts"), timeout=20)
        return r.status_code, sha(r.content), r.headers.get("X-Cache")

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(fetch, range(n)))
    assert origin.count("/live/demo/s0.ts") == 1
    assert {status for status, _, _ in results} == {200}
    assert {digest for _, digest, _ in results} == {sha(SEGMENT)}
    outcomes = {o: edge.metric("sluice_edge_cache_requests_total", result=o)
                for o in ("miss", "coalesced", "hit")}
    assert outcomes["miss"] == 1
    assert outcomes["miss"] + outcomes["coalesced"] + outcomes["hit"] == n
    assert outcomes["coalesced"] > n / 2   # most arrived while the fetch was out
    assert edge.metric("sluice_edge_origin_fetches_total", result="ok") == 1


# --------------------------------------------------------------------------
# Freshness and eviction

def test_playlists_refetched_after_their_ttl_segments_never(edge, origin):
    # target duration 1 s, 25 %: fresh for 250 ms
    r = edge.get("/live/demo/index.m3u8")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert r.headers["Cache-Control"].startswith("public, max-age=")
    assert r.headers["X-Cache"] == "MISS"
    assert edge.get("/live/demo/index.m3u8").headers["X-Cache"] == "HIT"
    assert origin.count("/live/demo/index.m3u8") == 1
    time.sleep(0.4)
    origin.set("/live/demo/index.m3u8", media_playlist(target=1, sequence=1,
                                                       segments=["s1.ts", "s2.ts"]))
    r = edge.get("/live/demo/index.m3u8")
    assert r.headers["X-Cache"] == "MISS"
    assert b"#EXT-X-MEDIA-SEQUENCE:1" in r.content
    assert origin.count("/live/demo/index.m3u8") == 2

    r = edge.get("/live/demo/s0.ts")
    assert r.headers["Content-Type"] == "video/mp2t"
    assert r.headers["Cache-Control"] == "public, max-age=86400, immutable"
    assert int(r.headers["Content-Length"]) == len(SEGMENT)
    time.sleep(0.6)
    r = edge.get("/live/demo/s0.ts")
    assert r.headers["X-Cache"] == "HIT"
    assert sha(r.content) == sha(SEGMENT)
    assert origin.count("/live/demo/s0.ts") == 1


def test_lru_eviction_by_bytes(daemons, redis_server, origin):
    origin.register(redis_server.client(), "demo")
    for i in range(6):
        origin.set(f"/live/demo/e{i}.ts", segment(300_000, seed=10 + i))
    edge = start_edge(daemons, redis_server, cache_size="1M", max_object_size="512k")
    for i in range(6):
        assert edge.get(f"/live/demo/e{i}.ts").status_code == 200
    cached = edge.metric("sluice_edge_cache_bytes")
    assert 0 < cached <= 1024 * 1024
    assert edge.metric("sluice_edge_cache_objects") == 3
    assert edge.metric("sluice_edge_cache_evictions_total") == 3
    # the most recent are still there, the first ones went
    assert edge.get("/live/demo/e5.ts").headers["X-Cache"] == "HIT"
    r = edge.get("/live/demo/e0.ts")
    assert r.headers["X-Cache"] == "MISS"
    assert sha(r.content) == sha(segment(300_000, seed=10))
    assert origin.count("/live/demo/e0.ts") == 2
    # an object larger than max-object-size is refused cleanly
    origin.set("/live/demo/big.ts", segment(600_000, seed=99))
    assert_json_error(edge.get("/live/demo/big.ts"), 502, "object_too_large")


# --------------------------------------------------------------------------
# Streams that are not live

def test_stream_not_in_redis_is_404_quickly(edge, origin, redis_server):
    t0 = time.monotonic()
    r = edge.get("/live/nobody/index.m3u8")
    elapsed = time.monotonic() - t0
    assert_json_error(r, 404, "not_found")
    assert "not live" in r.json()["message"]
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert elapsed < 0.5
    # negatively cached: a burst asks Redis once
    for _ in range(20):
        assert edge.get("/live/nobody/s1.ts").status_code == 404
    assert edge.metric("sluice_edge_route_lookups_total", result="absent") == 1
    assert sum(origin.requests.values()) == 0
    # a stream that goes live is found once the negative TTL (500 ms) is over
    origin.set("/live/nobody/index.m3u8", media_playlist())
    origin.register(redis_server.client(), "nobody")
    wait_for(lambda: edge.get("/live/nobody/index.m3u8").status_code == 200, timeout=3,
             what="the new stream")


def test_origin_404_is_404(edge, origin):
    assert_json_error(edge.get("/live/demo/missing.ts"), 404, "not_found")
    assert_json_error(edge.get("/live/demo/missing.ts"), 404, "not_found")
    assert origin.count("/live/demo/missing.ts") == 1   # cached briefly


# --------------------------------------------------------------------------
# Origin failures

def test_origin_down_serves_stale_then_errors_cleanly(daemons, redis_server, origin):
    origin.register(redis_server.client(), "demo")
    edge = start_edge(daemons, redis_server, stale_if_error="1500ms")
    assert edge.get("/live/demo/index.m3u8").status_code == 200
    assert edge.get("/live/demo/s0.ts").status_code == 200
    origin.stop()
    time.sleep(0.4)   # past the playlist's freshness
    r = edge.get("/live/demo/index.m3u8")
    assert r.status_code == 200
    assert r.headers["X-Cache"] == "STALE"
    assert r.headers["Cache-Control"] == "public, max-age=0"
    assert edge.get("/live/demo/s0.ts").headers["X-Cache"] == "HIT"   # immutable
    assert_json_error(edge.get("/live/demo/s1.ts"), 502, "origin_unreachable")
    # past the stale bound: a clean error, quickly
    time.sleep(1.6)
    t0 = time.monotonic()
    assert_json_error(edge.get("/live/demo/index.m3u8"), 502, "origin_unreachable")
    assert time.monotonic() - t0 < 1
    assert edge.metric("sluice_edge_cache_requests_total", result="stale") >= 1
    # the origin comes back: the edge recovers by itself
    origin.start()
    wait_for(lambda: edge.get("/live/demo/s1.ts").status_code == 200, timeout=5,
             what="recovery")
    assert edge.get("/live/demo/index.m3u8").status_code == 200


def test_origin_that_hangs_times_out_504(daemons, redis_server, origin):
    origin.register(redis_server.client(), "demo")
    edge = start_edge(daemons, redis_server, origin_timeout="500ms")
    origin.hang = True
    t0 = time.monotonic()
    assert_json_error(edge.get("/live/demo/s0.ts"), 504, "origin_timeout")
    assert time.monotonic() - t0 < 2
    assert edge.metric("sluice_edge_origin_fetches_total", result="timeout") == 1
    origin.hang = False


def test_malformed_route_record_is_502(edge, redis_server):
    redis_server.client().set("sluice:origin:broken", '{"url": "ftp://x"}')
    assert_json_error(edge.get("/live/broken/index.m3u8"), 502, "bad_route")
    assert "malformed route record" in edge.daemon.log_text()


# --------------------------------------------------------------------------
# The shape of paths

BAD_PATHS = [
    "/live/../x",
    "/live/..%2fx/index.m3u8",
    "/live/a%2Fb/index.m3u8",
    "/live/" + "a" * 65 + "/x.ts",
    "/live/demo/..%2f..%2fetc%2fpasswd",
    "/live/demo/%2e%2e/x.ts",
    "/live/demo/.index.m3u8",
    "/live/demo/index.m3u8%00.ts",
    "/live/de%00mo/index.m3u8",
    "/live/demo/x.txt",
    "/live/demo/x",
    "/live/demo/a/b.ts",
    "/live/demo",
    "/live/de%20mo/index.m3u8",
    "/live/demo/" + "f" * 200 + ".ts",
    "/live/" + "x/" * 40 + "y.ts",
    "/vod/../../etc/passwd",
    "/vod/rec%2f1/index.m3u8",
    "/live/demo/" + "%41" * 3000 + ".ts",   # a 9 KB path
    "/live//index.m3u8",                    # an empty name: a bad path, not an unknown one
    "/vod//index.m3u8",
    "/live/",
    "/vod/",
]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_bad_paths_are_400(edge, origin, path):
    status, headers, body = raw_get(edge.port, path)
    assert status == 400, (path, status, body[:200])
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == "bad_path"
    assert headers["access-control-allow-origin"] == "*"


def test_malformed_requests_refused_and_others_served(edge, origin):
    assert edge.get("/live/demo/s1.ts").status_code == 200
    # each refused with its own status (docs/edge.md, "The viewer port"), as
    # JSON, and the connection closed after the answer
    nasty = [
        (b"GET /live/demo/x\x00.ts HTTP/1.1\r\nHost: e\r\n\r\n", 400, "bad_request"),
        (b"GET /live/demo/" + b"a" * 100_000 + b".ts HTTP/1.1\r\nHost: e\r\n\r\n",
         414, "uri_too_long"),
        # TLS spoken at the port: answered at once, without waiting for a line end
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, 400, "bad_request"),
        (b"GET /live/demo/s1.ts HTTP/9.9\r\n\r\n", 505, "version_not_supported"),
    ]
    for req, want, error in nasty:
        status, headers, body = raw_request(edge.port, req, timeout=3)
        assert (status, json.loads(body)["error"]) == (want, error), (req[:40], status, body)
        assert headers["connection"] == "close", req[:40]
    # a lone empty line is not a request: ignored, as RFC 9112 section 2.2
    # allows before a request line (the connection is left to header-timeout),
    # and a request after it is served
    status, _, _ = raw_request(edge.port, b"\r\n", timeout=1)
    assert status is None
    status, _, _ = raw_request(edge.port, b"\r\nGET /live/demo/s1.ts HTTP/1.1\r\n"
                                          b"Connection: close\r\n\r\n")
    assert status == 200
    # everyone else is still served
    assert edge.get("/live/demo/s1.ts").status_code == 200
    assert edge.daemon.proc.poll() is None
    assert sum(origin.requests.values()) == 1
    # only GET, HEAD and OPTIONS
    r = requests.post(edge.url("/live/demo/s1.ts"), data=b"x", timeout=5)
    assert_json_error(r, 405, "method_not_allowed")


# --------------------------------------------------------------------------
# What browsers and players need

def test_cors_preflight_head_range_and_etag(edge, origin):
    r = requests.options(edge.url("/live/demo/index.m3u8"), timeout=5, headers={
        "Origin": "https://player.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in r.headers["Access-Control-Allow-Methods"]
    assert r.headers["Access-Control-Allow-Headers"] == "range"

    r = requests.head(edge.url("/live/demo/s0.ts"), timeout=5)
    assert r.status_code == 200
    assert int(r.headers["Content-Length"]) == len(SEGMENT)
    assert r.content == b""
    assert r.headers["Access-Control-Allow-Origin"] == "*"

    r = edge.get("/live/demo/s0.ts", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206
    assert r.content == SEGMENT[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(SEGMENT)}"
    r = edge.get("/live/demo/s0.ts", headers={"Range": "bytes=-10"})
    assert r.content == SEGMENT[-10:]
    r = edge.get("/live/demo/s0.ts", headers={"Range": f"bytes={len(SEGMENT)}-"})
    assert_json_error(r, 416, "range_not_satisfiable")

    etag = edge.get("/live/demo/s0.ts").headers["ETag"]
    r = edge.get("/live/demo/s0.ts", headers={"If-None-Match": etag})
    assert r.status_code == 304
    assert r.content == b""
    assert origin.count("/live/demo/s0.ts") == 1
    assert edge.metric("sluice_edge_bytes_out_total", kind="live") >= len(SEGMENT)


def test_vod_through_its_own_record(edge, origin, redis_server):
    origin.set("/vod/rec_1/index.m3u8", b"#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n"
               b"#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nv0.ts\n#EXT-X-ENDLIST\n")
    origin.set("/vod/rec_1/v0.ts", segment(50_000, seed=7))
    origin.register(redis_server.client(), "rec_1", kind="vod")
    r = edge.get("/vod/rec_1/index.m3u8")
    assert r.status_code == 200
    assert b"#EXT-X-ENDLIST" in r.content
    assert sha(edge.get("/vod/rec_1/v0.ts").content) == sha(segment(50_000, seed=7))
    assert_json_error(edge.get("/vod/rec_2/index.m3u8"), 404, "not_found")
    # a live stream of the same name is another thing
    assert_json_error(edge.get("/live/rec_1/index.m3u8"), 404, "not_found")


def test_viewers_per_stream(edge, origin):
    for ua in ("vlc", "hls.js", "ffplay", "vlc"):
        for path in ("/live/demo/index.m3u8", "/live/demo/s1.ts"):
            assert edge.get(path, headers={"User-Agent": ua}).status_code == 200
    assert edge.metric("sluice_edge_viewers", stream="demo") == 3
    text = requests.get(edge.daemon.admin_url("/metrics"), timeout=5).text
    for name in ("sluice_edge_origin_fetch_seconds_bucket", "sluice_edge_cache_objects",
                 "sluice_http_requests_total{server=\"edge\",route=\"live\",status=\"200\"}"):
        assert name in text


def test_readyz_follows_redis(edge, redis_server):
    assert requests.get(edge.daemon.admin_url("/readyz"), timeout=2).json()["ready"]
    redis_server.stop()
    wait_for(lambda: not edge.daemon.ready(), timeout=5, what="not ready")
    body = requests.get(edge.daemon.admin_url("/readyz"), timeout=2).json()
    assert body["checks"]["redis"] == "unreachable"
    redis_server.start()
    wait_for(edge.daemon.ready, timeout=10, what="ready again")


def test_sigterm_drains_a_request_in_flight(edge, origin):
    origin.delay = 1.0
    result = {}

    def fetch():
        r = requests.get(edge.url("/live/demo/s0.ts"), timeout=10)
        result["status"], result["sha"] = r.status_code, sha(r.content)

    t = threading.Thread(target=fetch)
    t.start()
    wait_for(lambda: origin.count("/live/demo/s0.ts") == 1, timeout=5, what="fetch out")
    edge.daemon.proc.send_signal(15)
    # new connections are refused at once, the one in flight completes
    wait_for(lambda: not _connects(edge.port), timeout=3, what="listener closed")
    t.join(10)
    assert result == {"status": 200, "sha": sha(SEGMENT)}
    edge.daemon.proc.wait(10)
    assert edge.daemon.proc.returncode == 0


def _connects(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def test_metrics_pass_promtool(edge, origin):
    import shutil
    import subprocess
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed")
    edge.get("/live/demo/index.m3u8")
    edge.get("/live/nobody/index.m3u8")
    text = requests.get(edge.daemon.admin_url("/metrics"), timeout=5).text
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
