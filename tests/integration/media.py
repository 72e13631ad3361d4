"""Helpers for tests that move media: the ffmpeg fixtures of
scripts/fixtures.sh (made on first use), TS packet parsing, ffprobe, and
running slpcat from $SLUICE_BIN."""
import json
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("SLUICE_BIN", ROOT / "build" / "asan" / "bin"))
FIXTURES = pathlib.Path(os.environ.get("SLUICE_FIXTURES", ROOT / "build" / "fixtures"))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "ERROR: UndefinedBehaviorSanitizer")


def fixture(name):
    """The path of a media fixture, making the fixtures if needed."""
    path = FIXTURES / name
    if not path.exists():
        subprocess.run([str(ROOT / "scripts" / "fixtures.sh")], check=True, cwd=ROOT)
    return path


def packets(data):
    """The 188-byte packets of <data>."""
    return [data[i:i + 188] for i in range(0, len(data) - 187, 188)]


def pid(pkt):
    return (pkt[1] & 0x1f) << 8 | pkt[2]


def pusi(pkt):
    return bool(pkt[1] & 0x40)


def pcr(pkt):
    """The packet's PCR in 27 MHz units, or None."""
    if not pkt[3] & 0x20 or pkt[4] < 7 or not pkt[5] & 0x10:
        return None
    base = pkt[6] << 25 | pkt[7] << 17 | pkt[8] << 9 | pkt[9] << 1 | pkt[10] >> 7
    return base * 300 + ((pkt[10] & 1) << 8 | pkt[11])


def ffprobe(path):
    """Streams and duration of a media file, as ffprobe sees them."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=duration",
         "-of", "json", str(path)], check=True, capture_output=True, text=True).stdout
    info = json.loads(out)
    return ([s["codec_name"] for s in info.get("streams", [])],
            float(info.get("format", {}).get("duration", 0)))


def video_pts(path):
    """The PTS (90 kHz, as in the TS) of every video frame of <path>, in
    decode order, as ffprobe reads them."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts",
         "-of", "csv=p=0", str(path)], check=True, capture_output=True, text=True).stdout
    return [int(line.split(",")[0]) for line in out.split()]


def decode_errors(path):
    """Lines ffmpeg prints at -v error while decoding <path> whole."""
    r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
                       capture_output=True, text=True)
    return [line for line in r.stderr.splitlines() if line.strip()]


def slpcat(*args, **kw):
    """Starts slpcat from $SLUICE_BIN with the sanitizer settings of the suite."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    lsan = ROOT / "tests" / "lsan.supp"
    if lsan.exists():
        env.setdefault("LSAN_OPTIONS", f"suppressions={lsan}")
    env.update(kw.pop("env", {}))
    return subprocess.Popen([str(BIN / "slpcat")] + [str(a) for a in args], env=env,
                            stdout=kw.pop("stdout", subprocess.PIPE),
                            stderr=subprocess.PIPE, **kw)


def finish(proc, timeout=20):
    """Waits for <proc>; returns (exit code, stdout bytes, stderr text), and
    fails on any sanitizer report."""
    out, err = proc.communicate(timeout=timeout)
    err = err.decode(errors="replace")
    for mark in SANITIZER_MARKS:
        assert mark not in err, f"sanitizer report from slpcat:\n{err[-6000:]}"
    return proc.returncode, out, err
