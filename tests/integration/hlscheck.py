"""A checker of live HLS media playlists (RFC 8216), for every test that
watches a stream: the origin's own tests, the edge's end-to-end tests.

Feed it every playlist a viewer would see, in the order seen; it checks each
one and how it follows the ones before, and raises PlaylistError (an
AssertionError) with the playlist's text at the first broken rule:

    checker = hlscheck.Checker()
    checker.feed(requests.get(url).text, source=url)   # every poll
    ...
    checker.segments        # {seq: Segment} of everything seen
    checker.ended           # EXT-X-ENDLIST seen

Rules on each playlist:
  - #EXTM3U first; EXT-X-VERSION, EXT-X-TARGETDURATION, EXT-X-MEDIA-SEQUENCE and
    EXT-X-DISCONTINUITY-SEQUENCE at most once each (the first two required),
    before the first segment; EXT-X-VERSION at least 3 when durations are
    decimal; nothing after EXT-X-ENDLIST; every EXTINF followed by its URI;
  - every EXTINF positive and, rounded to the nearest integer, at most the
    target duration;
  - EXT-X-PROGRAM-DATE-TIME (when segments carry it) never goes back, and
    between segments without EXT-X-DISCONTINUITY advances by exactly the
    previous EXTINF (within `pdt_tolerance`);
  - at least one segment (an empty live playlist is useless to a player).
Rules across playlists (one presentation: until EXT-X-ENDLIST, after which a
new presentation may begin with sequence numbers beyond the ended one):
  - EXT-X-TARGETDURATION never changes;
  - EXT-X-MEDIA-SEQUENCE never decreases, and the last segment never goes back
    (a live playlist only grows at the end and drops from the start);
  - a media sequence number always names the same URI, with the same
    duration, date and discontinuity sequence number: the discontinuity
    sequence number of a segment is EXT-X-DISCONTINUITY-SEQUENCE plus the
    EXT-X-DISCONTINUITY tags up to and including its own, so a tag that slides
    out must raise EXT-X-DISCONTINUITY-SEQUENCE;
  - a playlist that slid (its media sequence went up) still lasts three
    target durations (RFC 8216 section 6.2.2), unless its window restarted at
    a discontinuity with nothing in common with the playlist before (a new
    origin took the stream over);
  - after EXT-X-ENDLIST the playlist does not change (same text), unless a
    new presentation begins.
Optionally `uri_pattern` (a regex) every segment URI must match; sluice-hls
names segments "<epoch>-<seq>.ts".
"""
import calendar
import dataclasses
import re
import time

SLUICE_URI = r"(?P<epoch>[1-9][0-9]*)-(?P<seq>0|[1-9][0-9]*)\.ts"
_HEADER_TAGS = ("#EXT-X-VERSION:", "#EXT-X-TARGETDURATION:", "#EXT-X-MEDIA-SEQUENCE:",
                "#EXT-X-DISCONTINUITY-SEQUENCE:", "#EXT-X-PLAYLIST-TYPE:",
                "#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-START:")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})\Z")


class PlaylistError(AssertionError):
    pass


@dataclasses.dataclass
class Segment:
    seq: int
    uri: str
    duration: float
    dseq: int
    discontinuity: bool
    pdt: float = None          # seconds since the epoch, or None


@dataclasses.dataclass
class Playlist:
    text: str
    version: int
    target: int
    media_sequence: int
    discontinuity_sequence: int
    segments: list
    ended: bool

    @property
    def first(self):
        return self.segments[0].seq

    @property
    def last(self):
        return self.segments[-1].seq

    @property
    def duration(self):
        return sum(s.duration for s in self.segments)


def parse_date(value):
    """An RFC 3339 date (as EXT-X-PROGRAM-DATE-TIME writes it) in seconds."""
    m = _DATE.match(value)
    if not m:
        raise ValueError(f"not a date: {value!r}")
    y, mo, d, h, mi, s, frac, zone = m.groups()
    t = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s)))
    t += float(frac) if frac else 0.0
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        hh, mm = int(zone[1:3]), int(zone[-2:])
        t -= sign * (hh * 3600 + mm * 60)
    return t


def parse(text, pdt_tolerance=0.002, uri_pattern=None):
    """Parses and checks one media playlist; returns a Playlist."""
    def fail(msg):
        raise PlaylistError(f"{msg}\n--- playlist ---\n{text}")

    if not text.endswith("\n"):
        fail("the last line has no newline")
    lines = text.split("\n")[:-1]
    if not lines or lines[0].rstrip("\r") != "#EXTM3U":
        fail("the first line is not #EXTM3U")
    seen = {}
    version = target = None
    ms, ds = 0, 0
    segments = []
    pending = {}
    ended = False
    uri_re = re.compile(uri_pattern + r"\Z") if uri_pattern else None
    decimal = False
    for no, raw in enumerate(lines[1:], start=2):
        line = raw.rstrip("\r")
        if ended and line.strip():
            fail(f"line {no} after EXT-X-ENDLIST: {line!r}")
        if not line.strip():
            continue
        tag = next((t for t in _HEADER_TAGS if line.startswith(t)), None)
        if tag:
            if tag in seen:
                fail(f"{tag.rstrip(':')} repeated (line {no})")
            if segments or pending:
                fail(f"{tag.rstrip(':')} after the first segment (line {no})")
            seen[tag] = line[len(tag):]
            try:
                if tag == "#EXT-X-VERSION:":
                    version = int(seen[tag])
                elif tag == "#EXT-X-TARGETDURATION:":
                    target = int(seen[tag])
                elif tag == "#EXT-X-MEDIA-SEQUENCE:":
                    ms = int(seen[tag])
                elif tag == "#EXT-X-DISCONTINUITY-SEQUENCE:":
                    ds = int(seen[tag])
            except ValueError:
                fail(f"{tag.rstrip(':')} is not a decimal integer (line {no})")
            continue
        if line == "#EXT-X-DISCONTINUITY":
            pending["disc"] = True
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            try:
                pending["pdt"] = parse_date(line.split(":", 1)[1])
            except ValueError as e:
                fail(f"line {no}: {e}")
        elif line.startswith("#EXTINF:"):
            value = line[len("#EXTINF:"):].split(",", 1)[0]
            try:
                pending["duration"] = float(value)
            except ValueError:
                fail(f"line {no}: EXTINF {value!r} is not a number")
            decimal = decimal or "." in value
            if "," not in line:
                fail(f"line {no}: EXTINF without its comma")
        elif line == "#EXT-X-ENDLIST":
            ended = True
        elif line.startswith("#"):
            if line.startswith("#EXT") and not line.startswith(("#EXT-X-", "#EXTINF")):
                fail(f"line {no}: unknown tag {line!r}")
        else:
            if "duration" not in pending:
                fail(f"line {no}: URI {line!r} without EXTINF")
            if target is None:
                fail("segment before EXT-X-TARGETDURATION")
            seq = ms + len(segments)
            disc = pending.get("disc", False)
            prev = segments[-1] if segments else None
            dseq = (prev.dseq if prev else ds) + (1 if disc else 0)
            seg = Segment(seq, line, pending["duration"], dseq, disc, pending.get("pdt"))
            if seg.duration <= 0:
                fail(f"segment {seq}: EXTINF {seg.duration} is not positive")
            if int(seg.duration + 0.5) > target:      # half up: 2.5 is 3
                fail(f"segment {seq}: EXTINF {seg.duration} rounds above the target "
                     f"duration {target}")
            m = uri_re.match(seg.uri) if uri_re else None
            if uri_re and not m:
                fail(f"segment {seq}: URI {seg.uri!r} does not match {uri_pattern}")
            if m and "seq" in m.groupdict() and int(m.group("seq")) != seq:
                fail(f"segment {seq} is named {seg.uri!r}")
            if prev and prev.pdt is not None and seg.pdt is not None:
                end = prev.pdt + prev.duration
                if seg.pdt < end - pdt_tolerance:
                    fail(f"segment {seq}: date {seg.pdt:.3f} before the end of segment "
                         f"{prev.seq} ({end:.3f})")
                if not disc and abs(seg.pdt - end) > pdt_tolerance:
                    fail(f"segment {seq}: date {seg.pdt:.3f} does not follow segment "
                         f"{prev.seq} ({prev.pdt:.3f} + {prev.duration})")
            segments.append(seg)
            pending = {}
    if pending:
        fail("tags after the last segment")
    if version is None or target is None:
        fail("EXT-X-VERSION or EXT-X-TARGETDURATION missing")
    if decimal and version < 3:
        fail(f"decimal EXTINF needs EXT-X-VERSION 3, this is {version}")
    if not segments:
        fail("no segment")
    return Playlist(text, version, target, ms, ds, segments, ended)


class Checker:
    """Checks a sequence of playlists of one stream, as one viewer sees them."""

    def __init__(self, pdt_tolerance=0.002, uri_pattern=SLUICE_URI, min_window_durations=3):
        self.pdt_tolerance = pdt_tolerance
        self.uri_pattern = uri_pattern
        self.min_window = min_window_durations
        self.last = None            # the previous Playlist
        self.segments = {}          # seq -> Segment, everything seen
        self.playlists = 0
        self.presentations = 1
        self.log = []               # (monotonic time, source, first, last, ended)

    @property
    def ended(self):
        return self.last is not None and self.last.ended

    def feed(self, text, source=""):
        """Checks <text>; returns its Playlist. Raises PlaylistError."""
        try:
            pl = parse(text, self.pdt_tolerance, self.uri_pattern)
            self._follow(pl)
        except PlaylistError as e:
            history = "\n".join(f"  {t:.3f} {src} {a}..{b}{' ENDLIST' if end else ''}"
                                for t, src, a, b, end in self.log[-8:])
            prev = f"\n--- the playlist before ---\n{self.last.text}" if self.last else ""
            raise PlaylistError(f"{source}: {e}{prev}\n--- last seen ---\n{history}") from None
        self.last = pl
        self.playlists += 1
        self.log.append((time.monotonic(), source, pl.first, pl.last, pl.ended))
        return pl

    def _follow(self, pl):
        prev = self.last
        if prev is not None and prev.ended:
            if pl.text == prev.text:
                return
            if pl.first <= prev.last:
                raise PlaylistError(f"the playlist changed after EXT-X-ENDLIST (now "
                                    f"{pl.first}..{pl.last}, ended at {prev.last})")
            self.presentations += 1
            prev = None                          # a new presentation
        if prev is not None:
            if pl.target != prev.target:
                raise PlaylistError(f"EXT-X-TARGETDURATION changed from {prev.target} to "
                                    f"{pl.target}")
            if pl.media_sequence < prev.media_sequence:
                raise PlaylistError(f"EXT-X-MEDIA-SEQUENCE went back from "
                                    f"{prev.media_sequence} to {pl.media_sequence}")
            if pl.last < prev.last:
                raise PlaylistError(f"the last segment went back from {prev.last} to {pl.last}")
            restarted = pl.first > prev.last and pl.segments[0].discontinuity
            if (pl.media_sequence > prev.media_sequence and not restarted and
                    pl.duration < self.min_window * pl.target - 0.001):
                raise PlaylistError(f"slid to {pl.duration:.3f} s, less than "
                                    f"{self.min_window} target durations")
        for seg in pl.segments:
            old = self.segments.get(seg.seq)
            if old is not None and (old.uri, old.dseq) != (seg.uri, seg.dseq):
                raise PlaylistError(f"segment {seg.seq} was {old.uri} (discontinuity sequence "
                                    f"{old.dseq}), now {seg.uri} ({seg.dseq})")
            if old is not None and abs(old.duration - seg.duration) > 1e-6:
                raise PlaylistError(f"segment {seg.seq} lasted {old.duration}, now "
                                    f"{seg.duration}")
            if (old is not None and old.pdt is not None and seg.pdt is not None and
                    abs(old.pdt - seg.pdt) > self.pdt_tolerance):
                raise PlaylistError(f"segment {seg.seq} was dated {old.pdt:.3f}, now "
                                    f"{seg.pdt:.3f}")
        for seg in pl.segments:
            self.segments[seg.seq] = seg
        # across playlists, dates never go back
        if prev is not None:
            tail = prev.segments[-1]
            for seg in pl.segments:
                if seg.seq == tail.seq + 1 and seg.pdt is not None and tail.pdt is not None:
                    if seg.pdt < tail.pdt + tail.duration - self.pdt_tolerance:
                        raise PlaylistError(f"segment {seg.seq} dated before the end of "
                                            f"{tail.seq}")
