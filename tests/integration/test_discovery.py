"""sluice-discovery against a real Redis and a directory written exactly as
hls writes it (origin.json and live/<name>/index.m3u8 through a temporary
file and rename): the origin key appears, stays while the playlist is
rewritten, expires when writes stop; rescans on start and after a Redis
restart; invalid names, a broken origin.json and a missing directory are
reported, not fatal."""
import json
import os
import time

import pytest
import requests

from conftest import wait_for
from httporigin import atomic_write, metric

ORIGIN = {"url": "http://10.0.0.5:8080", "node": "hls-1",
          "updated_at": "2026-11-21T10:00:00.000Z"}


@pytest.fixture
def outdir(tmp_path):
    d = tmp_path / "hls"
    d.mkdir()
    return d


def write_origin(outdir, value=ORIGIN):
    atomic_write(str(outdir / "origin.json"),
                 value if isinstance(value, str) else json.dumps(value))


def write_playlist(outdir, name, seq=0):
    d = outdir / "live" / name
    d.mkdir(parents=True, exist_ok=True)
    atomic_write(str(d / "index.m3u8"),
                 f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:{seq}\n")


def start_discovery(daemons, redis_server, outdir, ttl="2s", **extra):
    env = {"SLUICE_REDIS_URL": redis_server.url, "SLUICE_DIR": str(outdir),
           "SLUICE_TTL": ttl, "SLUICE_RETRY": "200ms"}
    env.update({f"SLUICE_{k.upper()}": str(v) for k, v in extra.items()})
    return daemons("discovery", env)


def readyz(d):
    return requests.get(d.admin_url("/readyz"), timeout=2).json()


def test_key_lives_while_playlist_is_rewritten(daemons, redis_server, outdir):
    r = redis_server.client()
    write_origin(outdir)
    d = start_discovery(daemons, redis_server, outdir)
    wait_for(d.ready, what="discovery ready")
    assert r.get("sluice:origin:demo") is None
    write_playlist(outdir, "demo")   # the directory appears, then its playlist
    value = wait_for(lambda: r.get("sluice:origin:demo"), timeout=3, what="origin key")
    record = json.loads(value)
    assert record["url"] == "http://10.0.0.5:8080"
    assert record["manifest"] == "/live/demo/index.m3u8"
    assert record["updated_at"].endswith("Z") and "T" in record["updated_at"]
    assert 0 < r.pttl("sluice:origin:demo") <= 2000
    # rewritten every 500 ms for 4 s (twice the TTL): never missing
    for seq in range(1, 9):
        time.sleep(0.5)
        write_playlist(outdir, "demo", seq)
        assert r.get("sluice:origin:demo") is not None, f"expired at {seq}"
    # writes stop: the key expires by itself within the TTL
    t0 = time.monotonic()
    wait_for(lambda: r.get("sluice:origin:demo") is None, timeout=4, what="expiry")
    assert time.monotonic() - t0 <= 2.5
    assert metric(d, "sluice_discovery_refreshes_total") >= 5
    assert metric(d, "sluice_discovery_streams") == 1
    assert metric(d, "sluice_discovery_streams_seen_total") == 1
    assert metric(d, "sluice_discovery_streams_active") == 0


def test_streams_come_and_go(daemons, redis_server, outdir):
    r = redis_server.client()
    write_origin(outdir)
    d = start_discovery(daemons, redis_server, outdir)
    wait_for(d.ready, what="ready")
    # live/ itself appears after discovery started
    for name in ("a", "b", "c"):
        write_playlist(outdir, name)
    for name in ("a", "b", "c"):
        wait_for(lambda: r.get(f"sluice:origin:{name}"), timeout=3, what=name)
    assert metric(d, "sluice_discovery_streams") == 3
    import shutil
    shutil.rmtree(outdir / "live" / "b")
    wait_for(lambda: metric(d, "sluice_discovery_streams") == 2, timeout=3, what="b unwatched")
    write_playlist(outdir, "b", 5)   # and back
    wait_for(lambda: metric(d, "sluice_discovery_streams") == 3, timeout=3, what="b again")
    r.delete("sluice:origin:b")
    write_playlist(outdir, "b", 6)
    wait_for(lambda: r.get("sluice:origin:b"), timeout=3, what="b refreshed")


def test_rescan_on_start_skips_old_playlists(daemons, redis_server, outdir):
    r = redis_server.client()
    write_origin(outdir)
    write_playlist(outdir, "fresh")
    write_playlist(outdir, "old")
    past = time.time() - 3600
    os.utime(outdir / "live" / "old" / "index.m3u8", (past, past))
    d = start_discovery(daemons, redis_server, outdir, ttl="10s")
    value = wait_for(lambda: r.get("sluice:origin:fresh"), timeout=3, what="rescan")
    assert json.loads(value)["url"] == ORIGIN["url"]
    # the key lives what is left of the TTL since the playlist was written
    assert 0 < r.pttl("sluice:origin:fresh") <= 10000
    assert r.get("sluice:origin:old") is None
    assert metric(d, "sluice_discovery_streams") == 2
    assert metric(d, "sluice_discovery_rescans_total", reason="start") == 1


def test_rescan_after_redis_restart(daemons, redis_server, outdir):
    r = redis_server.client()
    write_origin(outdir)
    write_playlist(outdir, "demo")
    d = start_discovery(daemons, redis_server, outdir, ttl="10s")
    wait_for(lambda: r.get("sluice:origin:demo"), timeout=3, what="key")
    refreshes = metric(d, "sluice_discovery_refreshes_total")
    redis_server.stop()
    redis_server.start()   # empty: no persistence
    r = redis_server.client()
    # no new write of the playlist: the rescan after reconnecting restores it
    wait_for(lambda: r.get("sluice:origin:demo"), timeout=8, what="key after restart")
    assert metric(d, "sluice_discovery_rescans_total", reason="redis") >= 2
    assert metric(d, "sluice_discovery_refreshes_total") > refreshes


def test_invalid_names_ignored_and_logged_once(daemons, redis_server, outdir):
    r = redis_server.client()
    write_origin(outdir)
    d = start_discovery(daemons, redis_server, outdir)
    wait_for(d.ready, what="ready")
    for name in ("bad.name", "x" * 65, "sp ace"):
        write_playlist(outdir, name)
    write_playlist(outdir, "good")
    wait_for(lambda: r.get("sluice:origin:good"), timeout=3, what="good")
    write_playlist(outdir, "bad.name", 1)
    d.proc.send_signal(1)   # SIGHUP: nothing but a log reopen
    time.sleep(0.3)
    assert r.keys("sluice:origin:*") == ["sluice:origin:good"]
    log = d.log_text()
    assert log.count("live/bad.name: not a valid stream name") == 1
    assert metric(d, "sluice_discovery_errors_total", reason="invalid_name") == 3
    assert d.ready()


def test_origin_json_missing_or_malformed(daemons, redis_server, outdir):
    r = redis_server.client()
    d = start_discovery(daemons, redis_server, outdir)
    body = readyz(d)
    assert not body["ready"]
    assert "No such file" in body["checks"]["origin.json"]
    write_playlist(outdir, "demo")
    time.sleep(0.3)
    assert r.get("sluice:origin:demo") is None   # nothing to advertise yet
    write_origin(outdir, '{"url": "ftp://nope"}')
    wait_for(lambda: "http://host" in readyz(d)["checks"]["origin.json"], timeout=3,
             what="malformed reported")
    assert "origin.json" in d.log_text()
    write_origin(outdir, {"url": "http://10.9.9.9:8080"})
    wait_for(d.ready, timeout=3, what="ready")
    # the streams already there are advertised at once, with the new URL
    value = wait_for(lambda: r.get("sluice:origin:demo"), timeout=3, what="key")
    assert json.loads(value)["url"] == "http://10.9.9.9:8080"


def test_missing_directory_then_created(daemons, redis_server, tmp_path):
    outdir = tmp_path / "later"
    d = start_discovery(daemons, redis_server, outdir)
    body = readyz(d)
    assert not body["ready"]
    assert "No such file" in body["checks"]["directory"]
    outdir.mkdir()
    write_origin(outdir)
    write_playlist(outdir, "demo")
    wait_for(d.ready, timeout=3, what="ready")
    wait_for(lambda: redis_server.client().get("sluice:origin:demo"), timeout=3, what="key")
    # the directory removed under it: reported, and picked up again
    import shutil
    shutil.rmtree(outdir)
    wait_for(lambda: not d.ready(), timeout=3, what="not ready")
    outdir.mkdir()
    write_origin(outdir)
    wait_for(d.ready, timeout=3, what="ready again")


def test_rate_bound_keeps_the_latest_write(daemons, redis_server, outdir):
    """A playlist replaced 40 times in 200 ms makes a few writes, not 40, and the
    last replacement still reaches Redis (ttl 2 s: at most one write per 200 ms)."""
    r = redis_server.client()
    write_origin(outdir)
    d = start_discovery(daemons, redis_server, outdir)
    wait_for(d.ready, what="ready")
    t0 = time.monotonic()
    for seq in range(40):
        write_playlist(outdir, "busy", seq)
        time.sleep(0.005)
    last_write = time.time()
    elapsed = time.monotonic() - t0
    time.sleep(0.5)
    refreshes = metric(d, "sluice_discovery_refreshes_total")
    assert 1 <= refreshes <= elapsed / 0.2 + 2   # one per 200 ms, and the last
    # the key's TTL counts from (nearly) the last replacement
    left_ms = r.pttl("sluice:origin:busy")
    assert left_ms > 2000 - (time.time() - last_write) * 1000 - 300


def test_metrics_pass_promtool(daemons, redis_server, outdir):
    import shutil
    import subprocess
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed")
    write_origin(outdir)
    write_playlist(outdir, "demo")
    d = start_discovery(daemons, redis_server, outdir)
    wait_for(lambda: redis_server.client().get("sluice:origin:demo"), timeout=3, what="key")
    text = requests.get(d.admin_url("/metrics"), timeout=5).text
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
