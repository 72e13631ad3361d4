"""A second, independent SLP v1 codec in Python, written from proto/SLP.md
alone, for tests that play the relay (or a publisher) against the C code.
It also reads the spec's worked examples, so that the spec is checked by two
implementations, not one.

    sock = socket.create_connection(...)
    conn = Conn(sock)
    conn.send(hello(ROLE_RELAY, "relay-test"))
    frame = conn.recv()          # a Frame, or None at EOF
"""
import re
import socket
import struct
from dataclasses import dataclass, field

VERSION = 1
HEADER = struct.Struct(">IBBH")      # length, version, type, flags
MAX_FRAME = 1 << 20
MAX_CONTROL = 1024
TS = 188

HELLO, PUBLISH, SUBSCRIBE, ACCEPT, MEDIA, EOS, PING, PONG, ERROR = range(1, 10)
TYPE_NAMES = {HELLO: "HELLO", PUBLISH: "PUBLISH", SUBSCRIBE: "SUBSCRIBE",
              ACCEPT: "ACCEPT", MEDIA: "MEDIA", EOS: "EOS", PING: "PING",
              PONG: "PONG", ERROR: "ERROR"}
ROLE_PUBLISHER, ROLE_SUBSCRIBER, ROLE_RELAY = 1, 2, 3
START_KEYFRAME, START_LIVE = 1, 2
F_KEYFRAME, F_DISCONTINUITY = 0x1, 0x2
PTS_NONE = -1
ERRORS = {1: "bad_frame", 2: "unsupported_version", 3: "unknown_type",
          4: "too_large", 5: "bad_name", 6: "unexpected", 7: "conflict",
          8: "not_found", 9: "timeout", 10: "unavailable", 11: "overloaded",
          12: "too_slow", 13: "replaced", 14: "going_away", 15: "internal"}
ERROR_CODES = {v: k for k, v in ERRORS.items()}
EOS_REASONS = {1: "ended", 2: "publisher_lost", 3: "shutdown", 4: "revoked"}
NAME_RE = re.compile(rb"[A-Za-z0-9_-]{1,64}\Z")


class Invalid(Exception):
    """The bytes can never be a valid frame; .code is the ERROR code name."""

    def __init__(self, code, why):
        super().__init__(f"{code}: {why}")
        self.code = code


@dataclass
class Frame:
    type: int
    flags: int = 0
    fields: dict = field(default_factory=dict)
    raw: bytes = b""

    def __getattr__(self, name):
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def type_name(self):
        return TYPE_NAMES[self.type]


# --------------------------------------------------------------------------
# Encoding

def _str8(b):
    b = b.encode() if isinstance(b, str) else bytes(b)
    assert len(b) <= 255
    return bytes([len(b)]) + b


def frame(type_, body, flags=0):
    return HEADER.pack(len(body), VERSION, type_, flags) + body


def hello(role, node, agent="slpwire/1", version=VERSION):
    return frame(HELLO, bytes([role, version]) + _str8(node) + _str8(agent))


def publish(name, publisher, node="test-node", protocol="slpcat", client="",
            started_us=0):
    return frame(PUBLISH, _str8(name) + _str8(publisher) + _str8(node) + _str8(protocol)
                 + _str8(client) + struct.pack(">q", started_us))


def subscribe(name, start=START_KEYFRAME, wait_ms=0):
    return frame(SUBSCRIBE, _str8(name) + struct.pack(">BI", start, wait_ms))


def accept(request):
    return frame(ACCEPT, bytes([request]))


def media(ts, flags=0, pts=PTS_NONE, wall_us=0):
    assert ts and len(ts) % TS == 0
    return frame(MEDIA, struct.pack(">qq", pts, wall_us) + bytes(ts), flags)


def eos(reason=1, text=""):
    return frame(EOS, bytes([reason]) + _str8(text))


def ping(token, pong=False):
    return frame(PONG if pong else PING, struct.pack(">Q", token))


def error(code, text=""):
    if isinstance(code, str):
        code = ERROR_CODES[code]
    return frame(ERROR, struct.pack(">H", code) + _str8(text))


# --------------------------------------------------------------------------
# Decoding: section 11 of the spec, step by step

def check_header(buf):
    """None if more bytes are needed to judge; else the frame size. Raises
    Invalid as soon as the bytes prove the frame invalid."""
    if len(buf) < 5:
        return None
    length, version = struct.unpack_from(">IB", buf)
    if version != VERSION:
        raise Invalid("unsupported_version", f"version {version}")
    if length > MAX_FRAME - 8:
        raise Invalid("too_large", f"length {length}")
    if len(buf) < 6:
        return None
    t = buf[5]
    if t not in TYPE_NAMES:
        raise Invalid("unknown_type", f"type {t}")
    if t == MEDIA:
        if length < 16 + TS or (length - 16) % TS:
            raise Invalid("bad_frame", "MEDIA length")
    elif t in (PING, PONG):
        if length != 8:
            raise Invalid("bad_frame", "PING length")
    elif t == ACCEPT:
        if length != 1:
            raise Invalid("bad_frame", "ACCEPT length")
    elif length > MAX_CONTROL:
        raise Invalid("too_large", "control frame")
    return 8 + length


class _Body:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, n):
        if self.o + n > len(self.b):
            raise Invalid("bad_frame", "field runs past the end")
        v = self.b[self.o:self.o + n]
        self.o += n
        return v

    def u8(self):
        return self.take(1)[0]

    def unpack(self, fmt):
        s = struct.Struct(fmt)
        return s.unpack(self.take(s.size))

    def str8(self):
        return self.take(self.u8())


def _visible(b, lo, hi, min_len, max_len):
    return min_len <= len(b) <= max_len and all(lo <= c <= hi for c in b)


def _need(ok, why, code="bad_frame"):
    if not ok:
        raise Invalid(code, why)


def _parse(t, r):
    f = {}
    if t == HELLO:
        f["role"], f["version"] = r.u8(), r.u8()
        f["node"], f["agent"] = r.str8(), r.str8()
        _need(f["role"] in (1, 2, 3), "role")
        _need(f["version"] >= 1, "version")
        _need(_visible(f["node"], 0x21, 0x7e, 1, 128), "node")
        _need(_visible(f["agent"], 0x20, 0x7e, 0, 64), "agent")
    elif t == PUBLISH:
        for k in ("name", "publisher", "node", "protocol", "client"):
            f[k] = r.str8()
        (f["started_us"],) = r.unpack(">q")
        _need(NAME_RE.match(f["name"]), "name", "bad_name")
        _need(_visible(f["publisher"], 0x21, 0x7e, 1, 128), "publisher")
        _need(_visible(f["node"], 0x21, 0x7e, 1, 128), "node")
        _need(re.fullmatch(rb"[a-z0-9]{1,16}", f["protocol"]), "protocol")
        _need(_visible(f["client"], 0x21, 0x7e, 0, 64), "client")
        _need(f["started_us"] >= 0, "started_us")
    elif t == SUBSCRIBE:
        f["name"] = r.str8()
        f["start"], f["wait_ms"] = r.unpack(">BI")
        _need(NAME_RE.match(f["name"]), "name", "bad_name")
        _need(f["start"] in (1, 2), "start")
    elif t == ACCEPT:
        f["request"] = r.u8()
        _need(f["request"] in (PUBLISH, SUBSCRIBE), "request")
    elif t == MEDIA:
        f["pts"], f["wall_us"] = r.unpack(">qq")
        f["ts"] = r.take(len(r.b) - r.o)
        _need(-1 <= f["pts"] < (1 << 33), "pts")
        _need(f["wall_us"] >= 0, "wall_us")
        _need(all(f["ts"][i] == 0x47 for i in range(0, len(f["ts"]), TS)), "sync")
    elif t == EOS:
        f["reason"], f["text"] = r.u8(), r.str8()
    elif t in (PING, PONG):
        (f["token"],) = r.unpack(">Q")
    elif t == ERROR:
        (f["code"],) = r.unpack(">H")
        f["text"] = r.str8()
        _need(f["code"] != 0, "code 0")
    _need(r.o == len(r.b), "trailing bytes")
    return f


def decode(buf):
    """(Frame, size) for the frame at the start of <buf>, or (None, need)."""
    size = check_header(buf)
    if size is None:
        return None, 8
    if len(buf) < size:
        return None, size
    length, _, t, flags = HEADER.unpack_from(buf)
    fields = _parse(t, _Body(bytes(buf[8:size])))
    return Frame(t, flags, fields, bytes(buf[:size])), size


class Conn:
    """Frames over a blocking socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def send(self, data):
        self.sock.sendall(data)

    def recv(self):
        """The next frame, or None at a clean EOF between frames."""
        while True:
            f, size = decode(self.buf)
            if f is not None:
                del self.buf[:size]
                return f
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                if self.buf:
                    raise Invalid("bad_frame", "EOF inside a frame")
                return None
            self.buf += chunk

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# --------------------------------------------------------------------------
# The spec's worked examples

def spec_examples(path):
    """{name: bytes} for every ```slp <name> block of proto/SLP.md."""
    text = open(path, encoding="utf-8").read()
    out = {}
    for m in re.finditer(r"^```slp (\w+)\n(.*?)^```", text, re.S | re.M):
        data = bytearray()
        for line in m.group(2).splitlines():
            for tok in line.split(";", 1)[0].split():
                byte, _, count = tok.partition("*")
                data += bytes([int(byte, 16)]) * (int(count) if count else 1)
        out[m.group(1)] = bytes(data)
    return out
