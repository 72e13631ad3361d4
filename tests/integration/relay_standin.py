"""A minimal SLP relay in Python, standing in for sluice-relay until it is on
main (issue 4): enough of proto/SLP.md for ingest's tests. It accepts a
PUBLISH only from the holder of sluice:lease:publish:<name> (read from the
real Redis), replaces an older publisher of the name with ERROR replaced,
forwards PUBLISH and MEDIA to subscribers (each starts on a KEYFRAME frame,
and a publisher change is marked DISCONTINUITY), ends subscribers with EOS
when the publisher sends EOS, answers PINGs, and announces itself as
sluice:relay:<id>. It records what every publisher connection sent.

    relay = StandinRelay(redis_url).start()
    ... relay.addr, relay.published("cam1") ...
    relay.stop()

TODO(relay on main): tests use sluice-relay itself once it is merged; see
test_ingest.py's `relay` fixture.
"""
import json
import select
import socket
import threading
import time

import slpwire as w


class Publisher:
    def __init__(self, conn, frame):
        self.conn = conn
        self.publish = frame            # the PUBLISH frame, forwarded as is
        self.name = frame.name.decode()
        self.id = frame.publisher.decode()
        self.media = []                 # MEDIA frames received
        self.eos = None
        self.closed = False
        self.error_sent = None


class StandinRelay:
    def __init__(self, redis_client, relay_id="relay-standin", port=0):
        self.redis = redis_client
        self.id = relay_id
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.live = {}                  # name -> Publisher
        self.publishers = []            # every publisher connection, in order
        self.subscribers = {}           # name -> [ [conn, started] ]
        self.stopping = False
        self.threads = []

    # -- life ---------------------------------------------------------------

    def start(self):
        self._spawn(self._accept_loop)
        self._spawn(self._heartbeat)
        return self

    def stop(self):
        self.stopping = True
        try:
            self.redis.delete(f"sluice:relay:{self.id}")
        except Exception:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes the accept() under way
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            conns = [p.conn for p in self.publishers] + [
                s[0] for subs in self.subscribers.values() for s in subs]
        for c in conns:
            c.close()

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def _heartbeat(self):
        while not self.stopping:
            with self.lock:
                n = len(self.live)
            record = {"id": self.id, "address": self.addr, "streams": n, "subscribers": 0,
                      "updated_at": "2026-11-21T10:00:00.000Z"}
            try:
                self.redis.set(f"sluice:relay:{self.id}", json.dumps(record), px=2000)
            except Exception:
                pass
            time.sleep(0.5)

    def _accept_loop(self):
        while not self.stopping:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            self._spawn(self._serve, w.Conn(s))

    # -- what tests look at -------------------------------------------------

    def published(self, name):
        """Every publisher connection that asked for <name>, in order."""
        with self.lock:
            return [p for p in self.publishers if p.name == name]

    def drop(self, name):
        """Breaks the connections of <name>'s publishers (a relay crash, as
        far as they can tell)."""
        for p in self.published(name):
            try:
                p.conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def media_bytes(self, name):
        return sum(len(f.ts) for p in self.published(name) for f in p.media)

    # -- connections --------------------------------------------------------

    def _serve(self, conn):
        try:
            hello = conn.recv()
            req = conn.recv()
            if hello is None or req is None or hello.type != w.HELLO:
                conn.close()
                return
            conn.send(w.hello(w.ROLE_RELAY, self.id, "standin-relay/1"))
            if req.type == w.PUBLISH:
                self._publisher(conn, req)
            elif req.type == w.SUBSCRIBE:
                self._subscriber(conn, req)
        except (OSError, w.Invalid):
            pass
        finally:
            conn.close()

    def _refuse(self, conn, code, text):
        conn.send(w.error(code, text))
        conn.sock.shutdown(socket.SHUT_WR)
        while conn.recv() is not None:
            pass

    def _publisher(self, conn, req):
        name, pid = req.name.decode(), req.publisher.decode()
        holder = self.redis.get(f"sluice:lease:publish:{name}")
        if holder != pid:
            self._refuse(conn, "conflict", f"lease of {name} held by {holder}")
            return
        p = Publisher(conn, req)
        with self.lock:
            old = self.live.get(name)
            self.live[name] = p
            self.publishers.append(p)
            for sub in self.subscribers.get(name, []):
                self._send(sub, req.raw)
                sub[1] = "wait-key-disc" if sub[1] != "wait-publish" else "wait-key"
        if old is not None and not old.closed:
            old.error_sent = "replaced"
            try:
                old.conn.send(w.error("replaced", f"the lease of {name} passed to {pid}"))
                old.conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        conn.send(w.accept(w.PUBLISH))
        while True:
            f = conn.recv()
            if f is None:
                break
            if f.type == w.MEDIA:
                p.media.append(f)
                self._fan_out(p, f)
            elif f.type == w.PING:
                conn.send(w.ping(f.token, pong=True))
            elif f.type == w.EOS:
                p.eos = f
                self._end(p, f)
                conn.sock.shutdown(socket.SHUT_WR)
                while conn.recv() is not None:
                    pass
                break
            elif f.type == w.ERROR:
                break
        p.closed = True
        with self.lock:
            if self.live.get(name) is p and p.eos is None:
                pass                    # lost: the stream waits for the holder

    def _subscriber(self, conn, req):
        """ACCEPT at once if the stream is live or the subscriber waits; if it
        does not go live within wait_ms, ERROR not_found (SLP.md 6)."""
        name = req.name.decode()
        sub = [conn, "wait-publish"]
        with self.lock:
            p = self.live.get(name)
            if p is None and req.wait_ms == 0:
                sub = None
            else:
                conn.send(w.accept(w.SUBSCRIBE))
                self.subscribers.setdefault(name, []).append(sub)
                if p is not None:
                    self._send(sub, p.publish.raw)
                    sub[1] = "wait-key"
        if sub is None:
            self._refuse(conn, "not_found", f"stream {name} is not live")
            return
        deadline = time.monotonic() + req.wait_ms / 1000
        try:
            while True:
                if not select.select([conn.sock], [], [], 0.1)[0]:
                    with self.lock:
                        expired = sub[1] == "wait-publish" and time.monotonic() >= deadline
                        if expired:
                            self.subscribers[name].remove(sub)
                    if expired:
                        self._refuse(conn, "not_found", f"stream {name} did not go live")
                        return
                    continue
                f = conn.recv()
                if f is None:
                    break
                if f.type == w.PING:
                    conn.send(w.ping(f.token, pong=True))
        finally:
            with self.lock:
                if sub in self.subscribers.get(name, []):
                    self.subscribers[name].remove(sub)

    def _send(self, sub, data):
        try:
            sub[0].send(data)
        except OSError:
            pass

    def _fan_out(self, p, f):
        with self.lock:
            if self.live.get(p.name) is not p:
                return                  # a displaced publisher's media stops here
            for sub in self.subscribers.get(p.name, []):
                if sub[1] in ("wait-key", "wait-key-disc"):
                    if not f.flags & w.F_KEYFRAME:
                        continue
                    flags = f.flags | (w.F_DISCONTINUITY if sub[1] == "wait-key-disc" else 0)
                    sub[1] = "live"
                    self._send(sub, w.media(f.ts, flags, f.pts, f.wall_us))
                elif sub[1] == "live":
                    self._send(sub, f.raw)

    def _end(self, p, eos):
        with self.lock:
            if self.live.get(p.name) is not p:
                return
            del self.live[p.name]
            for sub in self.subscribers.get(p.name, []):
                self._send(sub, eos.raw)
                try:
                    sub[0].sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
