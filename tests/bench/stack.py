"""The servers a benchmark stands on, started for real as the integration
tests start them (tests/integration/conftest.py, api_fixtures.py): a private
PostgreSQL cluster, a private redis-server and sluice-api (the release build)
over them, each on a free loopback port, and any other sluice daemon
(Daemon). Used by every bench:

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import stack

    servers = stack.Servers()
    try:
        pg = servers.start(stack.Postgres())
        redis = servers.start(stack.Redis(workdir))
        api = servers.start(stack.Api(workdir, pg.dsn, redis.url))
        relay = servers.start(stack.Daemon("relay", workdir, {
            "SLUICE_REDIS_URL": redis.url, "SLUICE_NODE_ID": "bench-relay"}))
        token = api.login()
        key = api.create_stream(token, "cam1")
        ...
    finally:
        servers.stop()

(Servers records each server before starting it and stops them in reverse
order, so that the stops also take down a half-started stack; stopping what
never started does nothing). Processes a bench starts itself (load
generators, peers) go in the same list, or through stop_process.

Each server takes cpu="<list>" to run under `taskset -c <list>`. A failure exits
with the bench's name (sys.argv[0]) and what went wrong, as the benches do.
Runs with the system interpreter and its standard library only.
"""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("SLUICE_BIN", ROOT / "build" / "release" / "bin"))
PROG = pathlib.Path(sys.argv[0]).name
JWT_SECRET = "bench-jwt-secret-0123456789abcdef0123"
INTERNAL_TOKEN = "bench-internal-token-0123456789abcdef"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "bench-admin-password"


def require(*tools, fixture=None):
    """Exits the bench if one of <tools> is not in $SLUICE_BIN; makes the
    test media (scripts/fixtures.sh) if <fixture> (a path in it) is missing."""
    for tool in tools:
        if not (BIN / tool).exists():
            sys.exit(f"{PROG}: {BIN / tool} is missing (make build)")
    if fixture is not None and not pathlib.Path(fixture).exists():
        subprocess.run([str(ROOT / "scripts" / "fixtures.sh")], check=True, cwd=ROOT)


def free_port(kind=socket.SOCK_STREAM):
    """A port free for TCP (or UDP) on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, what, timeout=20):
    """Polls <pred> (an OSError counts as not yet) until it is true; exits
    the bench if it is not within <timeout> seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"{PROG}: timed out waiting for {what}")


def pinned(cpu, cmd):
    """<cmd> run on the cores <cpu> (taskset's list), or anywhere if None."""
    cmd = [str(a) for a in cmd]
    return cmd if cpu is None else ["taskset", "-c", str(cpu)] + cmd


def port_open(port):
    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True


def http(method, url, body=None, token=None):
    """One JSON call: (status, decoded body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None


def stop_processes(procs, sig=signal.SIGTERM, timeout=15):
    """Sends <sig> to those of <procs> (Popen) that still run, all at once,
    then waits for each, killing it if it is still there after <timeout>
    seconds."""
    running = [p for p in procs if p is not None and p.poll() is None]
    for p in running:
        p.send_signal(sig)
    for p in running:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def stop_process(proc, sig=signal.SIGTERM, timeout=15):
    """stop_processes() of one."""
    stop_processes([proc], sig, timeout)


class Servers(list):
    """What a bench started, stopped in reverse order: servers of this module
    and bare Popen processes (stopped with SIGTERM)."""

    def start(self, server, *args, **kwargs):
        """Records <server>, then starts it (so a failed start is stopped
        too); returns it."""
        self.append(server)
        server.start(*args, **kwargs)
        return server

    def stop(self):
        while self:
            s = self.pop()
            if isinstance(s, subprocess.Popen):
                stop_process(s)
            else:
                s.stop()


def load_report(proc, out, timeout=120, check=False):
    """The JSON report a load tool (slpload, srtload) printed to the file
    <out> (opened w+), once <proc> has ended (within <timeout> seconds), with
    the tool's CPU as % of one core in cpu_pct. Exits the bench, with the
    tool's stderr, if it printed none (or, with <check>, exited non-zero)."""
    _, err = proc.communicate(timeout=timeout)
    out.seek(0)
    text = out.read()
    out.close()
    if not text.strip() or (check and proc.returncode != 0):
        name = pathlib.Path(proc.args[0]).name
        sys.exit(f"{PROG}: {name} failed: {(err or b'').decode(errors='replace')[-2000:]}")
    r = json.loads(text)
    r["cpu_pct"] = 100.0 * (r["cpu_user_s"] + r["cpu_sys_s"]) / r["seconds"]
    return r


def metrics(admin_port):
    """{series: value} scraped from a daemon's /metrics on <admin_port>."""
    url = f"http://127.0.0.1:{admin_port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def total(m, name):
    """The sum of every series of <name> in scraped metrics <m>."""
    return sum(v for k, v in m.items() if k == name or k.startswith(name + "{"))


def cpu_ticks(pid):
    """User and system clock ticks <pid> has used (0 once it is gone)."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])       # utime, stime
    except (OSError, IndexError):
        return 0


def rss_kb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def buckets(m, name):
    """[(upper bound, cumulative count)] of histogram <name> in metrics <m>."""
    out = []
    for key, value in m.items():
        if key.startswith(name + "_bucket{le="):
            le = key.split('le="', 1)[1].split('"', 1)[0]
            out.append((float("inf") if le == "+Inf" else float(le), value))
    return sorted(out)


def hist_percentile(before, after, q):
    """The <q> quantile of what a histogram gained between two scrapes (of
    buckets()), by linear interpolation within buckets."""
    diff = [(le, a - b) for (le, a), (_, b) in zip(after, before)]
    count = diff[-1][1] if diff else 0
    if count <= 0:
        return float("nan")
    want, lo, prev = q * count, 0.0, 0.0
    for le, n in diff:
        if n >= want:
            if le == float("inf"):
                return lo
            return lo + (le - lo) * (want - prev) / max(n - prev, 1e-9)
        lo, prev = le, n
    return lo


class Postgres:
    """A private cluster in a directory of its own (mkdtemp), on a free port,
    fsync off. PostgreSQL refuses to run as root: as root the directory
    belongs to postgres and every command goes through runuser."""

    def __init__(self, cpu=None):
        found = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not found:
            sys.exit(f"{PROG}: PostgreSQL server binaries not found (make deps)")
        self.bin = found[-1].parent
        self.cpu = cpu
        self.port = free_port()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="sluice-bench-pg-"))
        self.root = os.geteuid() == 0
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")

    @property
    def dsn(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *args):
        cmd = pinned(self.cpu, args)
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self):
        try:
            self.run(self.bin / "initdb", "-D", self.dir / "data", "-A", "trust", "-U",
                     "postgres", "--no-sync", "-E", "UTF8")
            self.run(self.bin / "pg_ctl", "-D", self.dir / "data", "-l", self.dir / "log",
                     "-w", "-o", f"-p {self.port} -k {self.dir} "
                     "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
                     "start")
        except subprocess.CalledProcessError as e:
            self.stop()
            sys.exit(f"{PROG}: PostgreSQL did not start ({e.cmd[-1]} failed)")
        return self

    def stop(self):
        try:
            self.run(self.bin / "pg_ctl", "-D", self.dir / "data", "-m", "immediate", "-w",
                     "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    """A private redis-server, no persistence."""

    def __init__(self, workdir, cpu=None):
        self.cpu = cpu
        self.workdir = workdir
        self.port = free_port()
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def cli(self):
        """The redis-cli command line for this server, to append a command to."""
        return ["redis-cli", "-p", str(self.port)]

    def set(self, key, value):
        """SET <key> <value>, through redis-cli."""
        subprocess.run(self.cli() + ["SET", key, value], check=True, stdout=subprocess.DEVNULL)

    def start(self):
        self.proc = subprocess.Popen(
            pinned(self.cpu, ["redis-server", "--port", self.port, "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", self.workdir,
                              "--loglevel", "warning"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), "redis-server")
        return self

    def stop(self):
        stop_process(self.proc, signal.SIGKILL)
        self.proc = None


class Daemon:
    """sluice-<name> from <bin_dir> ($SLUICE_BIN), with none of the caller's
    SLUICE_* settings: its admin port on a free loopback port, its public
    one too unless <listen> is False (SLUICE_LISTEN: for a daemon without
    one, or whose port is not TCP), log level <log_level> (None: the
    daemon's default) and its log in <workdir>/<log_name or name>.log;
    <env> adds or overrides SLUICE_* settings."""

    def __init__(self, name, workdir, env=None, cpu=None, listen=True, log_level="warn",
                 bin_dir=None, log_name=None):
        self.name = f"sluice-{name}"
        self.binary = pathlib.Path(bin_dir or BIN) / self.name
        self.cpu = cpu
        self.log_path = pathlib.Path(workdir) / f"{log_name or name}.log"
        self.admin_port = free_port()
        self.port = free_port() if listen else None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        self.env["SLUICE_ADMIN_LISTEN"] = f"127.0.0.1:{self.admin_port}"
        if listen:
            self.env["SLUICE_LISTEN"] = f"127.0.0.1:{self.port}"
        if log_level:
            self.env["SLUICE_LOG_LEVEL"] = log_level
        self.env.update({k: str(v) for k, v in (env or {}).items()})
        self.proc = None

    waiting = "to start"            # what ready() waits for, for the timeout's message

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        """Starts the daemon and returns once it is ready()."""
        if not self.binary.exists():
            sys.exit(f"{PROG}: {self.binary} is missing (make build)")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(pinned(self.cpu, [self.binary]), env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.ready, f"{self.name} {self.waiting}")
        return self

    def check_alive(self):
        """Exits the bench, with the end of the log, if the daemon has exited."""
        if self.proc.poll() is not None:
            sys.exit(f"{PROG}: {self.name} exited with {self.proc.returncode}:\n"
                     + self.log_path.read_text(errors="replace")[-2000:])

    def ready(self):
        """Its admin port, and its public one if any, take connections."""
        self.check_alive()
        return port_open(self.admin_port) and (self.port is None or port_open(self.port))

    def metrics(self):
        return metrics(self.admin_port)

    def stop(self):
        stop_process(self.proc)
        self.proc = None


class Api(Daemon):
    """sluice-api on <dsn> and <redis_url>, with the bench's secrets and
    bootstrap admin, a cheap password hash, its default log level and its
    log in <workdir>/api.log; <env> adds or overrides SLUICE_* settings."""

    def __init__(self, workdir, dsn, redis_url, cpu=None, env=None):
        settings = {"SLUICE_DATABASE_URL": dsn, "SLUICE_REDIS_URL": redis_url,
                    "SLUICE_JWT_SECRET": JWT_SECRET, "SLUICE_INTERNAL_TOKEN": INTERNAL_TOKEN,
                    "SLUICE_ADMIN_USER": ADMIN_USER, "SLUICE_ADMIN_PASSWORD": ADMIN_PASSWORD,
                    "SLUICE_PASSWORD_COST": "10"}
        settings.update(env or {})
        super().__init__("api", workdir, settings, cpu=cpu, log_level=None)
        self.base = f"http://127.0.0.1:{self.port}"

    waiting = "/readyz"

    def start(self):
        """Starts the api and returns once it is ready and its admin can log in
        (the admin is inserted right after the database comes up)."""
        super().start()
        wait_for(lambda: self.call("POST", "/v1/auth/login", {
            "username": ADMIN_USER, "password": ADMIN_PASSWORD})[0] == 200, "the admin")
        return self

    def ready(self):
        self.check_alive()
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/readyz",
                                    timeout=1) as r:
            return r.status == 200

    def call(self, method, path, body=None, token=None):
        return http(method, self.base + path, body, token)

    def login(self):
        """The bootstrap admin's token."""
        status, body = self.call("POST", "/v1/auth/login",
                                 {"username": ADMIN_USER, "password": ADMIN_PASSWORD})
        if status != 200:
            sys.exit(f"{PROG}: login failed ({status})")
        return body["token"]

    def create_stream(self, token, name, **fields):
        """POST /v1/streams as <token>: the new stream's key."""
        status, body = self.call("POST", "/v1/streams", {"name": name, **fields}, token)
        if status != 201:
            sys.exit(f"{PROG}: creating a stream failed ({status})")
        return body["key"]


class Ingest(Daemon):
    """sluice-ingest taking SRT on a free loopback UDP port (srt_port), with
    its authorization table from <api> (an Api) and the relays it finds in
    <redis_url>'s sluice:relay:* (read every 500 ms); <env> adds or overrides
    SLUICE_* settings."""

    def __init__(self, workdir, api, redis_url, cpu=None, env=None):
        self.srt_port = free_port(socket.SOCK_DGRAM)
        settings = {"SLUICE_SRT_LISTEN": f"127.0.0.1:{self.srt_port}",
                    "SLUICE_API_URL": api.base, "SLUICE_INTERNAL_TOKEN": INTERNAL_TOKEN,
                    "SLUICE_REDIS_URL": redis_url, "SLUICE_NODE_ID": "bench-ingest",
                    "SLUICE_RELAY_REFRESH": "500ms"}
        settings.update(env or {})
        super().__init__("ingest", workdir, settings, cpu=cpu, listen=False)

    waiting = "ready with its table and a relay"

    def ready(self):
        """Its table is loaded and it knows a relay to publish to."""
        if not super().ready():
            return False
        m = self.metrics()
        return m.get("sluice_ingest_authtable_loaded") == 1 and \
            m.get("sluice_ingest_relays_known", 0) >= 1
