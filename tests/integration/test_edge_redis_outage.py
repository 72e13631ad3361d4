"""The issue's outage test: Redis stopped for 30 s while viewers watch. The edge
keeps serving the live stream it already knew, from its route memory (not
just from its cache: playlists expire every 250 ms here, so each one during
the outage is a new origin fetch), answers 503 for a stream it never knew,
and recovers by itself when Redis returns empty (no persistence), including
during the moment before discovery has written the keys again."""
import time

import pytest

from conftest import wait_for
from httporigin import TestOrigin, media_playlist, metric, segment, sha
from test_edge import assert_json_error, start_edge

OUTAGE_S = 30


@pytest.fixture
def origin():
    o = TestOrigin().start()
    for i in range(100):
        o.set(f"/live/demo/s{i}.ts", segment(20_000, seed=i))
    o.set("/live/demo/index.m3u8", media_playlist(target=1, segments=["s0.ts"]))
    yield o
    o.stop()


def test_redis_down_30s_keeps_serving_known_streams(daemons, redis_server, origin):
    origin.register(redis_server.client(), "demo")
    edge = start_edge(daemons, redis_server)   # route-ttl 200 ms, route-stale 2 min
    assert edge.get("/live/demo/index.m3u8").status_code == 200

    redis_server.stop()
    wait_for(lambda: not edge.daemon.ready(), timeout=5, what="edge sees Redis down")
    time.sleep(0.3)   # past the cached playlist's freshness
    playlists_before = origin.count("/live/demo/index.m3u8")
    failures = []
    i = 0
    deadline = time.monotonic() + OUTAGE_S
    while time.monotonic() < deadline:
        i += 1
        origin.set("/live/demo/index.m3u8",
                   media_playlist(target=1, sequence=i, segments=[f"s{i % 100}.ts"]))
        r = edge.get("/live/demo/index.m3u8")
        if r.status_code != 200 or f"#EXT-X-MEDIA-SEQUENCE:{i}".encode() not in r.content:
            failures.append(("playlist", i, r.status_code, r.text[:100]))
        r = edge.get(f"/live/demo/s{i % 100}.ts")
        if r.status_code != 200 or sha(r.content) != sha(segment(20_000, seed=i % 100)):
            failures.append(("segment", i, r.status_code))
        time.sleep(0.5)
    assert failures == []
    # every playlist above was fetched anew from the origin, through the memory
    assert origin.count("/live/demo/index.m3u8") - playlists_before >= OUTAGE_S
    assert metric(edge.daemon, "sluice_edge_route_lookups_total", result="remembered") > 0
    # a stream the edge never knew cannot be found while Redis is away
    assert_json_error(edge.get("/live/stranger/index.m3u8"), 503, "route_unavailable")

    # Redis returns empty (no persistence); discovery has not written yet
    redis_server.start()
    wait_for(edge.daemon.ready, timeout=10, what="edge sees Redis back")
    for _ in range(4):
        assert edge.get("/live/demo/index.m3u8").status_code == 200
        time.sleep(0.3)
    # discovery writes the keys again; a stream that started meanwhile is found
    origin.register(redis_server.client(), "demo")
    origin.set("/live/later/index.m3u8", media_playlist())
    origin.register(redis_server.client(), "later")
    assert edge.get("/live/later/index.m3u8").status_code == 200
    assert edge.get("/live/demo/index.m3u8").status_code == 200
    # and a stream that ended is gone once its key is (after the grace)
    redis_server.client().delete("sluice:origin:demo")
    edge2 = start_edge(daemons, redis_server)
    assert_json_error(edge2.get("/live/demo/index.m3u8"), 404, "not_found")
