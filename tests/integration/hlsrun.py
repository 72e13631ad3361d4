"""Helpers for tests that package live streams with sluice-hls: start a relay
and origins, publish a fixture, and watch playlists with hlscheck while the
test does its worst. Shared with the edge's end-to-end tests.

    relay = start_relay(daemons, redis_server)
    origin = start_hls(daemons, redis_server, tmp_path, "a")
    pub = Publisher(relay, redis_server, "demo", fixture("h264_aac_20s.ts"))
    with Watcher([origin], "demo") as watch:
        ... wait, kill, restart ...
    watch.checker.segments, watch.first_seen(...), origin.get(...)

Publishers:
  - SrtPublisher: ffmpeg sending a fixture in real time over SRT to
    sluice-ingest, which authorizes it with the real api (PostgreSQL) and
    publishes it into the relay: the path of a real encoder (start_ingest).
  - Publisher: `slpcat publish` straight into the relay (TS annotated exactly
    as ingest does, paced by its PCR): for tests about the packager that need
    the input's bytes untouched (PTS near the 2^33 wrap, odd GOPs, codecs).
"""
import os
import pathlib
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, free_port, wait_for
from hlscheck import Checker, PlaylistError
from media import slpcat
import relay_fixtures

HLS_FAST = {                       # timings that keep the suite quick
    "SLUICE_TARGET_DURATION": "2s",
    "SLUICE_LEASE_TTL": "3s",
    "SLUICE_END_GRACE": "4s",
    "SLUICE_SCAN_INTERVAL": "1s",
    "SLUICE_SETTLE": "3s",
    "SLUICE_LINGER": "20s",
    "SLUICE_REDIS_TIMEOUT": "500ms",
}


def need(binary):
    if not (BIN / binary).exists():
        pytest.skip(f"{binary} is not built (it comes with its own issue)")


def start_relay(daemons, redis_server, **settings):
    """relay_fixtures' relay (short heartbeats), with a 2 s publisher grace;
    .addr is its SLP address."""
    settings.setdefault("PUBLISHER_GRACE", "2s")
    settings.setdefault("LOG_LEVEL", "info")
    d = relay_fixtures.start_relay(daemons, redis_server, **settings)
    d.addr = d.slp
    return d


class Origin:
    """A sluice-hls and its directory."""

    def __init__(self, daemon, port, directory, name):
        self.daemon = daemon
        self.port = port
        self.dir = pathlib.Path(directory)
        self.name = name
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path, **kw):
        kw.setdefault("timeout", 2)
        return requests.get(self.url + path, **kw)

    def playlist(self, stream):
        """The playlist's text, or None when it is not served (yet)."""
        try:
            r = self.get(f"/live/{stream}/index.m3u8", timeout=1)
        except requests.RequestException:
            return None
        return r.text if r.status_code == 200 else None

    def metric(self, name, default=0.0):
        return self.daemon.metrics().get(name, default)

    def role(self, stream_metric_role):
        return self.metric(f'sluice_hls_streams{{role="{stream_metric_role}"}}')

    def owns(self):
        """Streams packaged here (the lease is ours)."""
        try:
            return self.role("live") + self.role("grace")
        except (requests.RequestException, AssertionError):
            return 0


def start_hls(daemons, redis_server, tmp_path, name="a", **env):
    need("sluice-hls")
    port = free_port()
    directory = pathlib.Path(tmp_path) / f"hls-{name}"
    settings = dict(HLS_FAST)
    settings.update({"SLUICE_REDIS_URL": redis_server.url, "SLUICE_LISTEN": f"127.0.0.1:{port}",
                     "SLUICE_DIR": str(directory), "SLUICE_NODE_ID": f"hls-{name}"})
    settings.update(env)
    d = daemons("hls", settings)
    return Origin(d, port, directory, name)


class Publisher:
    """slpcat publish of a fixture into a relay, holding the publish lease."""

    def __init__(self, relay, redis_server, stream, path, loop=False, publisher_id=None):
        args = ["publish", "--stream", stream, "--relay", relay.addr, "--file", str(path)]
        if publisher_id:
            args += ["--publisher-id", publisher_id]
        else:
            args += ["--redis-url", redis_server.url, "--takeover"]
        if loop:
            args.append("--loop")
        self.proc = slpcat(*args, stdout=open(os.devnull, "wb"))
        self.started = time.monotonic()

    def wait(self, timeout=60):
        _, err = self.proc.communicate(timeout=timeout)
        err = err.decode(errors="replace")
        assert "Sanitizer" not in err and "runtime error:" not in err, err
        return self.proc.returncode, err

    def stop(self):
        """Ends the input now, as a publisher that stops: EOS."""
        if self.proc.poll() is None:
            self.proc.send_signal(2)
        return self.wait(timeout=15)

    def kill(self):
        """Gone without EOS, as a publisher whose network died."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


class IngestStack:
    """api + sluice-ingest in front of a relay: make(stream) creates the stream
    through the api and returns an SRT URL with its key."""

    def __init__(self, api, ingest):
        self.api = api
        self.ingest = ingest
        self.keys = {}

    def url(self, stream):
        if stream not in self.keys:
            self.keys[stream] = self.api.create_stream(stream)["key"]
        return self.ingest.url(stream, self.keys[stream])


def start_ingest(daemons, api_factory, redis_server):
    """The api and an ingest that knows the relay(s) already started."""
    from ingest_fixtures import start_ingest as start
    need("sluice-ingest")
    api = api_factory()
    ing = start(daemons, api.base, redis_server.url)
    wait_for(lambda: ing.metric("sluice_ingest_relays_known") >= 1, what="a relay known")
    return IngestStack(api, ing)


class SrtPublisher:
    """ffmpeg publishing <path> in real time over SRT through ingest, as an
    encoder would (-stream_loop -1 with <loop>: the timeline goes on)."""

    def __init__(self, stack, stream, path, loop=False):
        args = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re"]
        if loop:
            args += ["-stream_loop", "-1"]
        args += ["-i", str(path), "-c", "copy", "-f", "mpegts", stack.url(stream)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait(self, timeout=60):
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err.decode(errors="replace")

    def stop(self):
        """The encoder stops: ffmpeg ends its output and closes (EOS at the relay)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.wait(timeout=15)

    def kill(self):
        """The encoder's machine dies: no goodbye; ingest finds it lost."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


class Watcher:
    """Polls the playlist of <stream> on each origin every <interval> s in a
    thread, as a viewer behind a switching edge would see it: every distinct
    playlist, from whichever origin serves it, in order of arrival, through
    one Checker. Also records when each segment was first seen where."""

    def __init__(self, origins, stream, interval=0.2, checker=None):
        self.origins = list(origins)
        self.stream = stream
        self.interval = interval
        self.checker = checker or Checker()
        self.error = None
        self.seen = {}            # seq -> (monotonic time, origin name)
        self.texts = {}           # origin name -> last text
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)
        self.raise_error()

    def raise_error(self):
        if self.error is not None:
            raise self.error

    def _run(self):
        while not self._stop.is_set():
            for o in self.origins:
                text = o.playlist(self.stream)
                if text is None or text == self.texts.get(o.name):
                    continue
                with self._lock:
                    self.texts[o.name] = text
                    try:
                        pl = self.checker.feed(text, source=o.name)
                    except PlaylistError as e:
                        if self.error is None:
                            self.error = e
                        continue
                    now = time.monotonic()
                    for seg in pl.segments:
                        self.seen.setdefault(seg.seq, (now, o.name))
            self.polls += 1
            self._stop.wait(self.interval)

    def last(self):
        with self._lock:
            return self.checker.last

    def wait_for(self, predicate, timeout, what):
        """Waits until predicate(last playlist) holds; fails early on a
        checker error."""
        def check():
            self.raise_error()
            pl = self.last()
            return pl is not None and predicate(pl)
        return wait_for(check, timeout=timeout, interval=0.1, what=what)
