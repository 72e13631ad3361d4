"""A test origin for the edge: a small HTTP server in a thread of the test,
serving objects from a dict, optionally slowly or not at all, and counting
the requests it receives per path. Registered in Redis like a real origin
(sluice:origin:<name> or sluice:vod:<id>), it stands in for hls and the
recorder."""
import hashlib
import http.server
import json
import os
import socket
import threading
import time
from collections import Counter

from conftest import free_port

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"


def media_playlist(target=2, sequence=0, segments=("s0.ts",)):
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}",
             f"#EXT-X-MEDIA-SEQUENCE:{sequence}"]
    for s in segments:
        lines += [f"#EXTINF:{target}.000,", s]
    return ("\n".join(lines) + "\n").encode()


def segment(size, seed=0):
    """<size> pseudo-random bytes, the same for the same seed."""
    out = bytearray()
    block = hashlib.sha256(f"seed{seed}".encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


class TestOrigin:
    """objects: {"/live/demo/index.m3u8": bytes or (status, bytes)}."""
    __test__ = False   # not a test class, despite its name

    def __init__(self, port=None):
        self.port = port or free_port()
        self.objects = {}
        self.delay = 0.0          # seconds before each answer
        self.hang = False         # accept and never answer
        self.requests = Counter()
        self.headers_seen = []
        self._lock = threading.Lock()
        self._server = None
        self._thread = None
        self._conns = set()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def count(self, path):
        with self._lock:
            return self.requests[path]

    def set(self, path, body, status=200):
        self.objects[path] = (status, body)

    def start(self):
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with origin._lock:
                    origin._conns.add(self.connection)

            def finish(self):
                with origin._lock:
                    origin._conns.discard(self.connection)
                super().finish()

            def do_GET(self):
                with origin._lock:
                    origin.requests[self.path] += 1
                    origin.headers_seen.append(dict(self.headers))
                if origin.hang:
                    time.sleep(30)
                    return
                if origin.delay:
                    time.sleep(origin.delay)
                status, body = origin.objects.get(self.path, (404, b"not here"))
                self.send_response(status)
                ctype = PLAYLIST_TYPE if self.path.endswith(".m3u8") else "video/mp2t"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"%s"' % hashlib.sha1(body).hexdigest()[:16])
                self.send_header("Last-Modified", "Sat, 21 Nov 2026 10:00:00 GMT")
                self.end_headers()
                self.wfile.write(body)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 512

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Closes the listener and every open connection, as a dying process
        would: new connections are refused, kept-alive ones are reset."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def register(self, redis_client, name, kind="origin", ttl_ms=None):
        """Writes the route record a real discovery (or recorder) would."""
        if kind == "origin":
            value = {"url": self.url, "manifest": f"/live/{name}/index.m3u8",
                     "updated_at": "2026-11-21T10:00:00.000Z"}
        else:
            value = {"url": self.url, "stream": "demo"}
        redis_client.set(f"sluice:{kind}:{name}", json.dumps(value), px=ttl_ms)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def raw_request(port, request, timeout=5.0):
    """Sends <request> (bytes) as is and returns (status, headers, body), with
    status None when the server closed the connection without an answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                head, sep, rest = data.partition(b"\r\n\r\n")
                if sep:
                    length = None
                    for line in head.split(b"\r\n")[1:]:
                        k, _, v = line.partition(b":")
                        if k.strip().lower() == b"content-length":
                            length = int(v.strip())
                    if length is not None and len(rest) >= length:
                        break
        except (ConnectionResetError, socket.timeout):
            pass
    if not data:
        return None, {}, b""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().decode().lower()] = v.strip().decode(errors="replace")
    return status, headers, body


def raw_get(port, path):
    if isinstance(path, str):
        path = path.encode()
    return raw_request(port, b"GET " + path + b" HTTP/1.1\r\nHost: edge\r\n"
                             b"Connection: close\r\n\r\n")


def metric(daemon, name, **labels):
    """One sample of <daemon>'s metrics, 0 when absent."""
    want = name
    if labels:
        want += "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    return daemon.metrics().get(want, 0.0)


def atomic_write(path, data):
    """As hls writes: a temporary name starting with '.', then rename(2)."""
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.rename(tmp, path)
