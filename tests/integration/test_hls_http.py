"""sluice-hls as an HTTP origin and a directory writer: headers, conditional
and HEAD requests, 404s, old segments leaving memory and disk, origin.json,
what a restart leaves, readiness and metrics."""
import json
import shutil
import subprocess
import time

import pytest
import requests

from conftest import wait_for
from hlsrun import Publisher, Watcher, start_hls, start_relay
from media import fixture


def test_headers_and_files(daemons, redis_server, tmp_path):
    relay = start_relay(daemons, redis_server)
    # a small window, so that segments leave the playlist, memory and disk
    origin = start_hls(daemons, redis_server, tmp_path, SLUICE_WINDOW="2",
                       SLUICE_END_GRACE="1s", SLUICE_LINGER="3s")
    info = json.loads((origin.dir / "origin.json").read_text())
    assert info["url"] == origin.url and info["node"] == "hls-a" and "updated_at" in info
    with Watcher([origin], "demo") as watch:
        pub = Publisher(relay, redis_server, "demo", fixture("h264_aac_20s.ts"))
        watch.wait_for(lambda pl: len(pl.segments) >= 3, 20, "three segments")
        r = origin.get("/live/demo/index.m3u8")
        assert r.headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert r.headers["Cache-Control"] == "public, max-age=1"
        etag = r.headers["ETag"]
        assert origin.get("/live/demo/index.m3u8",
                          headers={"If-None-Match": etag}).status_code in (200, 304)
        h = requests.head(origin.url + "/live/demo/index.m3u8", timeout=2)
        assert h.status_code == 200 and h.content == b""
        seg = watch.last().segments[0]
        r = origin.get(f"/live/demo/{seg.uri}")
        assert r.status_code == 200
        assert r.headers["Cache-Control"] == "public, max-age=86400, immutable"
        assert r.headers["Content-Length"] == str(len(r.content))
        assert origin.get(f"/live/demo/{seg.uri}",
                          headers={"If-None-Match": r.headers["ETag"]}).status_code == 304
        h = requests.head(f"{origin.url}/live/demo/{seg.uri}", timeout=2)
        assert h.status_code == 200 and h.headers["Content-Length"] == str(len(r.content))
        for path in ("/live/nobody/index.m3u8", f"/live/demo/9{seg.uri}", "/live/demo/index.m3u",
                     "/live/demo/x.ts", "/live/demo/01-2.ts", "/live/a.b/index.m3u8"):
            r = origin.get(path)
            assert r.status_code == 404, path
            assert r.json()["error"] == "not_found" and r.headers["Cache-Control"] == "no-store"
        assert origin.get("/live/demo/../x/index.m3u8").status_code in (400, 404)
        assert requests.post(origin.url + "/live/demo/index.m3u8", timeout=2).status_code == 405
        assert pub.wait(timeout=40)[0] == 0
        watch.wait_for(lambda pl: pl.ended, 15, "EXT-X-ENDLIST")
    pl = watch.last()
    segs = sorted(watch.checker.segments)
    assert len(segs) == 10 and len(pl.segments) == 3     # three target durations kept
    # kept: the playlist's, and window + 1 more for viewers still fetching
    kept = sorted(p.name for p in (origin.dir / "live" / "demo").glob("*.ts"))
    assert len(kept) == 6, kept
    assert kept == sorted(watch.checker.segments[s].uri for s in segs[-6:])
    assert origin.get(f"/live/demo/{watch.checker.segments[segs[0]].uri}").status_code == 404
    assert not list((origin.dir / "live" / "demo").glob(".*"))    # no temporary file left
    # after the linger, the stream is gone from memory and disk
    wait_for(lambda: origin.get("/live/demo/index.m3u8").status_code == 404, timeout=8,
             what="the ended stream dropped")
    assert not (origin.dir / "live" / "demo").exists()
    wait_for(lambda: origin.metric('sluice_hls_streams{role="candidate"}') == 0, timeout=3,
             what="the stream forgotten")
    assert origin.metric("sluice_hls_memory_bytes") == 0


def test_restart_cleans_the_directory_and_rewrites_origin_json(daemons, redis_server, tmp_path):
    d = tmp_path / "hls-a" / "live"
    (d / "old").mkdir(parents=True)
    for f in ("index.m3u8", "3-17.ts", ".index.m3u8.tmp"):
        (d / "old" / f).write_text("stale")
    (d / "old" / "notes.txt").write_text("not ours")
    origin = start_hls(daemons, redis_server, tmp_path)
    assert sorted(p.name for p in (d / "old").iterdir()) == ["notes.txt"]
    (origin.dir / "origin.json").unlink()
    wait_for(lambda: (origin.dir / "origin.json").exists(), timeout=8, what="origin.json again")
    assert origin.daemon.ready()


def test_readyz_follows_redis(daemons, redis_server, tmp_path):
    origin = start_hls(daemons, redis_server, tmp_path)
    wait_for(origin.daemon.ready, timeout=5, what="ready")
    body = requests.get(origin.daemon.admin_url("/readyz"), timeout=2).json()
    assert body["checks"] == {"redis": "ok", "directory": "ok", "origin.json": "ok"}
    redis_server.stop()
    wait_for(lambda: not origin.daemon.ready(), timeout=5, what="not ready")
    body = requests.get(origin.daemon.admin_url("/readyz"), timeout=2).json()
    assert body["checks"]["redis"] == "unreachable"
    redis_server.start()
    wait_for(origin.daemon.ready, timeout=10, what="ready again")


def test_advertise_url_and_bad_options(daemons, redis_server, tmp_path):
    origin = start_hls(daemons, redis_server, tmp_path,
                       SLUICE_ADVERTISE_URL="http://hls-a.internal:8080/")
    assert json.loads((origin.dir / "origin.json").read_text())["url"] == \
        "http://hls-a.internal:8080"
    from conftest import BIN
    for bad in (["--advertise-url=ftp://x"], ["--window=0"], ["--target-duration=100ms"]):
        r = subprocess.run([str(BIN / "sluice-hls"), f"--dir={tmp_path}/x",
                            "--listen=127.0.0.1:0", "--admin-listen=127.0.0.1:0"] + bad,
                           capture_output=True, text=True, timeout=20,
                           env={"SLUICE_REDIS_URL": redis_server.url,
                                "ASAN_OPTIONS": "detect_leaks=1"})
        assert r.returncode == 1, (bad, r.stderr)


def test_metrics_pass_promtool(daemons, redis_server, tmp_path):
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed")
    relay = start_relay(daemons, redis_server)
    origin = start_hls(daemons, redis_server, tmp_path)
    with Watcher([origin], "demo") as watch:
        pub = Publisher(relay, redis_server, "demo", fixture("h264_aac_10s.ts"))
        watch.wait_for(lambda pl: len(pl.segments) >= 1, 20, "a segment")
        origin.get("/live/nobody/index.m3u8")
        text = requests.get(origin.daemon.admin_url("/metrics"), timeout=5).text
        pub.stop()
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("sluice_hls_playlist_latency_seconds_bucket", "sluice_hls_segments_total",
                 'sluice_hls_streams{role="live"} 1', "sluice_hls_segment_duration_seconds_bucket",
                 'sluice_http_requests_total{server="hls",route="live",status="404"}'):
        assert name in text
