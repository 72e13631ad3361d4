"""Helpers for the relay's integration tests: start sluice-relay with short
timings against the test's redis-server, hold publish leases, drive SLP by
hand (slpwire) where a test must see every frame, and read the relay's
metrics and /v1/streams."""
import socket
import subprocess
import threading
import time

import requests

import slpwire as w
from conftest import free_port, wait_for
from media import ffprobe, slpcat

HEARTBEAT_MS = 500


def start_relay(daemons, redis_server, name="relay", **settings):
    """A relay on free ports with short timings; <settings> are extra
    SLUICE_* options, e.g. PUBLISHER_GRACE="1s". The returned daemon has
    .slp ("127.0.0.1:port") and .node."""
    port = free_port()
    node = f"{name}-{port}"
    env = {"SLUICE_LISTEN": f"127.0.0.1:{port}", "SLUICE_REDIS_URL": redis_server.url,
           "SLUICE_NODE_ID": node, "SLUICE_HEARTBEAT": f"{HEARTBEAT_MS}ms",
           "SLUICE_LOG_LEVEL": "debug"}
    env.update({f"SLUICE_{k}": str(v) for k, v in settings.items()})
    d = daemons("relay", env)
    d.slp = f"127.0.0.1:{port}"
    d.port = port
    d.node = node
    wait_for(d.ready, timeout=10, what="relay /readyz (Redis)")
    return d


def lease(redis_server, stream, holder, ttl_ms=120000):
    """Makes <holder> the publish lease holder of <stream>, as ingest would."""
    redis_server.client().set(f"sluice:lease:publish:{stream}", holder, px=ttl_ms)


def streams(relay):
    return requests.get(relay.admin_url("/v1/streams"), timeout=2).json()["streams"]


def stream_info(relay, name):
    r = requests.get(relay.admin_url(f"/v1/streams/{name}"), timeout=2)
    return r.json() if r.status_code == 200 else None


def metric(relay, name, **labels):
    """The sum of the series of <name> whose labels include <labels>."""
    total = 0.0
    want = [f'{k}="{v}"' for k, v in labels.items()]
    for key, value in relay.metrics().items():
        base = key.split("{", 1)[0]
        if base == name and all(x in key for x in want):
            total += value
    return total


def publish(relay, stream, publisher, path, *args, **kw):
    """slpcat publish of <path> with the given publisher id."""
    return slpcat("publish", "--relay", relay.slp, "--stream", stream, "--publisher-id",
                  publisher, "--node-id", "test-ingest", "--file", path, *args, **kw)


def subscribe(relay, stream, output, *args):
    return slpcat("subscribe", "--relay", relay.slp, "--stream", stream, "--output", output,
                  "--node-id", "test-sub", *args)


def probe_counts(path):
    """{codec: packets} of a TS file, as ffprobe counts them."""
    out = subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-show_entries",
                          "stream=codec_name,nb_read_packets", "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, text=True).stdout
    counts = {}
    for line in out.split():
        codec, n = line.split(",")
        counts[codec] = int(n)
    return counts


def first_video_frame(path):
    """(key_frame, pict_type) of the first video frame ffprobe decodes."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_frames",
                          "-read_intervals", "%+#1", "-show_entries",
                          "frame=key_frame,pict_type", "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, text=True).stdout
    key, pict = out.split()[0].split(",")[:2]
    return int(key), pict


class Client:
    """An SLP client written by hand, to send exactly what a test wants and
    see every frame that comes back."""

    def __init__(self, relay, rcvbuf=None, timeout=10):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        host, port = relay.slp.rsplit(":", 1)
        self.sock.connect((host, int(port)))
        self.conn = w.Conn(self.sock)

    def send(self, data):
        self.conn.send(data)

    def recv(self):
        """The next frame, answering PINGs; None at EOF."""
        while True:
            f = self.conn.recv()
            if f is not None and f.type == w.PING:
                self.send(w.ping(f.token, pong=True))
                continue
            return f

    def expect(self, type_, **fields):
        f = self.recv()
        assert f is not None, f"connection closed, expected {w.TYPE_NAMES[type_]}"
        assert f.type == type_, f"got {f.type_name} {f.fields}, expected {w.TYPE_NAMES[type_]}"
        for k, v in fields.items():
            assert getattr(f, k) == v, f"{f.type_name}.{k} = {getattr(f, k)!r}, not {v!r}"
        return f

    def expect_error(self, code, after_hello=True, before=()):
        """ERROR <code> (after the relay's HELLO if <after_hello>, and the
        frame types <before>), then EOF."""
        if after_hello:
            self.expect(w.HELLO, role=w.ROLE_RELAY)
        for t in before:
            self.expect(t)
        f = self.expect(w.ERROR)
        assert w.ERRORS.get(f.code) == code, f"ERROR {w.ERRORS.get(f.code)}: {f.text!r}"
        assert self.recv() is None, "the relay did not close after its ERROR"
        self.close()
        return f

    def close(self):
        self.conn.close()


def raw_publisher(relay, stream, publisher, node="test-ingest"):
    """A publisher connection that has been accepted."""
    c = Client(relay)
    c.send(w.hello(w.ROLE_PUBLISHER, node) + w.publish(stream, publisher, node, "srt",
                                                       "203.0.113.7:5000", int(time.time() * 1e6)))
    c.expect(w.HELLO, role=w.ROLE_RELAY)
    c.expect(w.ACCEPT, request=w.PUBLISH)
    return c


def raw_subscriber(relay, stream, start=w.START_KEYFRAME, wait_ms=10000, rcvbuf=None):
    """A subscriber connection that has been accepted."""
    c = Client(relay, rcvbuf=rcvbuf)
    c.send(w.hello(w.ROLE_SUBSCRIBER, "test-sub") + w.subscribe(stream, start, wait_ms))
    c.expect(w.HELLO, role=w.ROLE_RELAY)
    c.expect(w.ACCEPT, request=w.SUBSCRIBE)
    return c


def ts_packets(n, first=0x47, pid=0x100):
    """<n> dummy TS packets (sync byte, PID), enough for the relay, which
    does not parse TS."""
    pkt = bytes([first, (pid >> 8) & 0x1f, pid & 0xff, 0x10]) + b"\xff" * 184
    return pkt * n


class Collector:
    """Reads frames from a Client in a thread, until EOF or ERROR."""

    def __init__(self, client):
        self.client = client
        self.frames = []
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while (f := self.client.recv()) is not None:
                self.frames.append(f)
                if f.type in (w.EOS, w.ERROR):
                    break
        except (OSError, w.Invalid) as e:
            self.error = e

    def wait(self, timeout=20):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the subscriber never saw the end of the stream"
        return self.frames

    def of_type(self, type_):
        return [f for f in self.frames if f.type == type_]


def codecs_and_duration(path):
    codecs, duration = ffprobe(path)
    return sorted(codecs), duration
