"""The edge's head deadline (header-timeout) against slowloris: a client that
drips its request head a byte at a time, each byte soon enough to keep the
idle timeout (client-timeout) from firing, is answered 408 and closed once
the deadline passes, while other viewers are served as usual; a keep-alive
connection that merely waits between requests keeps the idle timeout only.

The deadline is 1 s here and the client timeout the default 30 s, so that
nothing in these tests could be cut by the idle timeout instead."""
import json
import os
import select
import socket
import subprocess
import threading
import time

import pytest

from conftest import BIN, wait_for
from httporigin import TestOrigin, media_playlist, segment
from test_edge import start_edge

HEAD = b"GET /live/demo/s0.ts HTTP/1.1\r\nHost: edge\r\nUser-Agent: slowloris\r\n\r\n"
DRIP = 0.25   # seconds between bytes: the whole head would take 15 s


@pytest.fixture
def origin():
    o = TestOrigin().start()
    o.set("/live/demo/index.m3u8", media_playlist(target=1, segments=["s0.ts"]))
    o.set("/live/demo/s0.ts", segment(20_000, seed=3))
    yield o
    o.stop()


@pytest.fixture
def edge(daemons, redis_server, origin):
    origin.register(redis_server.client(), "demo")
    e = start_edge(daemons, redis_server, header_timeout="1s")
    wait_for(e.daemon.ready, what="edge ready")
    return e


def connect(edge):
    return socket.create_connection(("127.0.0.1", edge.port), timeout=10)


def drip(sock, data):
    """Sends <data> a byte every DRIP seconds, reading what comes back, until
    the server ends its side (EOF or reset) or all is sent and it has had 20 s
    to answer. Returns (bytes sent, bytes received, whether it ended)."""
    sent, got = 0, b""
    while True:
        if sent < len(data):
            try:
                sock.sendall(data[sent:sent + 1])
                sent += 1
            except OSError:
                return sent, got, True
        ready, _, _ = select.select([sock], [], [], DRIP if sent < len(data) else 20)
        if not ready:
            if sent < len(data):
                continue
            return sent, got, False
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return sent, got, True
        if not chunk:
            return sent, got, True
        got += chunk


def response(data):
    """(status, headers, body) of one response in <data>."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


def read_response(sock):
    """Reads one response with a Content-Length from <sock>."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    status, headers, body = response(data)
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "closed amid a body"
        body += chunk
    return status, headers, body


def test_dripped_head_gets_408_and_a_close_while_others_are_served(edge):
    result = {}

    def slowloris():
        with connect(edge) as s:
            result["sent"], result["got"], result["ended"] = drip(s, HEAD)

    t = threading.Thread(target=slowloris)
    t.start()
    silent = connect(edge)   # connects and never sends a byte
    # a viewer while the slow client holds its connection: served as usual
    for _ in range(3):
        r = edge.get("/live/demo/s0.ts")
        assert r.status_code == 200
    t.join(30)
    assert not t.is_alive()

    assert result["ended"], result
    assert result["sent"] < len(HEAD)   # cut before it could finish its head
    status, headers, body = response(result["got"])
    assert status == 408
    assert result["got"].startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"
    assert json.loads(body[:int(headers["content-length"])]) == {
        "error": "request_timeout", "message": "the request head did not arrive in time"}

    # the one that sent nothing is closed without a word (no 408 for a
    # browser's unused preconnection to take as the answer to a later request)
    silent.settimeout(10)
    assert silent.recv(100) == b""
    silent.close()

    wait_for(lambda: edge.metric("sluice_http_connections", server="edge") == 0, timeout=10,
             what="both connections closed")
    assert edge.metric("sluice_edge_header_timeouts_total") == 2
    assert edge.metric("sluice_http_requests_total", server="edge", route="unmatched",
                       status="408") == 1
    assert edge.metric("sluice_http_requests_total", server="edge", route="live",
                       status="200") == 3
    log = edge.daemon.log_text()
    assert log.count("bytes of a request head in 1000 ms") == 1, log[-2000:]
    assert log.count("sent no request within 1000 ms") == 1, log[-2000:]


def test_keepalive_waiting_longer_than_the_deadline_is_not_cut(edge):
    with connect(edge) as s:
        s.sendall(HEAD)
        status, headers, _ = read_response(s)
        assert status == 200
        assert "connection" not in headers
        # idle between requests for longer than the head deadline (1 s), well
        # within the idle timeout (30 s); the next head's clock starts with it
        time.sleep(2.5)
        s.sendall(HEAD)
        status, _, body = read_response(s)
        assert status == 200
        assert len(body) == 20_000
    assert edge.metric("sluice_edge_header_timeouts_total") == 0
    assert edge.metric("sluice_http_requests_total", server="edge", route="unmatched",
                       status="408") == 0


def test_header_timeout_is_in_help_and_bounds_checked():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    r = subprocess.run([str(BIN / "sluice-edge"), "--help"], env=env, capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0
    assert "--header-timeout" in r.stdout and "SLUICE_HEADER_TIMEOUT" in r.stdout
    env["SLUICE_HEADER_TIMEOUT"] = "10ms"
    r = subprocess.run([str(BIN / "sluice-edge")], env=env, capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1
    assert "header-timeout" in r.stderr and "[100, 3600000]" in r.stderr
