"""Helpers for sluice-ingest's integration tests (test_ingest*.py): the stack
(the real api on PostgreSQL and Redis, sluice-relay, sluice-ingest) and the
clients (ffmpeg publishing and watching over SRT, srtprobe for reject codes
and closes, slpcat at the relay). Import the fixtures you use into the test
module:

    from ingest_fixtures import api, ingest, relay, ...  # noqa: F401
"""
import os
import socket
import subprocess

import pytest

from api_fixtures import INTERNAL_TOKEN, api_factory  # noqa: F401 (a fixture)
from conftest import free_port, wait_for
from media import BIN, fixture, slpcat


# --------------------------------------------------------------------------
# The stack: api, relay, ingest

class Relay:
    """sluice-relay on a fixed port, so that it can be killed and started
    again there. The `daemons` fixture stops it (and checks its exit)."""

    def __init__(self, daemons, redis_server, port=None):
        self.daemons = daemons
        self.redis_server = redis_server
        self.port = port or free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        self.proc = self.daemons("relay", {
            "SLUICE_LISTEN": self.addr, "SLUICE_REDIS_URL": self.redis_server.url,
            "SLUICE_NODE_ID": f"relay-{self.port}", "SLUICE_HEARTBEAT": "500ms",
            "SLUICE_PUBLISHER_GRACE": "5s"})
        wait_for(self.proc.ready, timeout=10, what="relay /readyz")
        return self

    def kill(self):
        """As when the relay's node dies: no goodbye to anyone."""
        self.proc.kill()
        self.proc = None


@pytest.fixture
def relay(daemons, redis_server):
    """The relay ingest publishes into (found in sluice:relay:*) and slpcat
    subscribes at."""
    return Relay(daemons, redis_server).start()


class Ingest:
    def __init__(self, daemon, srt_port, redis_url):
        self.daemon = daemon
        self.srt_port = srt_port
        self.redis_url = redis_url

    def url(self, stream, cred, mode="publish"):
        return f"srt://127.0.0.1:{self.srt_port}?streamid=#!::r={stream},s={cred},m={mode}"

    def streamid(self, stream, cred, mode="publish"):
        return f"#!::r={stream},s={cred},m={mode}"

    def metric(self, name, default=0.0):
        return self.daemon.metrics().get(name, default)


def ingest_env(api_url, redis_url, **overrides):
    srt_port = free_port(socket.SOCK_DGRAM)
    env = {
        "SLUICE_SRT_LISTEN": f"127.0.0.1:{srt_port}",
        "SLUICE_API_URL": api_url,
        "SLUICE_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "SLUICE_REDIS_URL": redis_url,
        "SLUICE_NODE_ID": "ingest-test",
        "SLUICE_LEASE_TTL": "2s",
        "SLUICE_RELAY_REFRESH": "200ms",
        "SLUICE_RELAY_BACKOFF_MAX": "1s",
        "SLUICE_SRT_STATS_INTERVAL": "300ms",
        "SLUICE_SRT_PEER_IDLE_TIMEOUT": "2s",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return srt_port, env


def start_ingest(daemons, api_url, redis_url, wait_ready=True, **overrides):
    srt_port, env = ingest_env(api_url, redis_url, **overrides)
    d = daemons("ingest", env)
    if wait_ready:
        wait_for(d.ready, timeout=15, what="ingest /readyz")
    return Ingest(d, srt_port, redis_url)


@pytest.fixture
def api(api_factory):  # noqa: F811
    return api_factory()


@pytest.fixture
def ingest(daemons, api, redis_server, relay):
    ing = start_ingest(daemons, api.base, redis_server.url)
    # the relay is picked from sluice:relay:*: wait until ingest knows it
    wait_for(lambda: ing.metric("sluice_ingest_relays_known") >= 1, what="a relay known")
    return ing


# --------------------------------------------------------------------------
# Clients

def srtprobe(*args, timeout=30):
    """Runs srtprobe; returns (exit code, stdout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    r = subprocess.run([str(BIN / "srtprobe")] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout, env=env)
    assert "ERROR: AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r.returncode, r.stdout.strip()


def ffmpeg_publish(url, src):
    """ffmpeg sending <src> in real time (-re) to <url>, as OBS would."""
    return subprocess.Popen(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
                             "-i", str(src), "-c", "copy", "-f", "mpegts", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def subscribe(relay, stream, out, wait=20):
    return slpcat("subscribe", "--relay", relay.addr, "--stream", stream, "--wait", wait,
                  "--output", out)


def cut(name, seconds, tmp_path):
    """The first <seconds> of a fixture, remuxed (whole GOPs are not needed)."""
    out = tmp_path / f"{name}-{seconds}s.ts"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(fixture(name)),
                    "-t", str(seconds), "-c", "copy", "-f", "mpegts", str(out)], check=True)
    return out


def flowing(ingest, stream, at_least=100_000):
    """Media of <stream> goes to a relay that accepted it."""
    m = ingest.daemon.metrics()
    return (m.get('sluice_ingest_relay_links{state="live"}', 0) >= 1 and
            m.get(f'sluice_ingest_stream_bytes_total{{stream="{stream}"}}', 0) >= at_least)


def session(api, stream, mode="publish"):
    r = api.call("POST", f"/v1/streams/{stream}/sessions", token=api.admin,
                 json_body={"mode": mode})
    assert r.status_code == 201, r.text
    return r.json()["session_id"]


def lease(redis_server, stream):
    return redis_server.client().get(f"sluice:lease:publish:{stream}")
