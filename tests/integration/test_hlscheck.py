"""The playlist checker itself: it accepts what RFC 8216 allows and catches
each rule broken, so that a test passing through it means something."""
import pytest

import hlscheck
from hlscheck import Checker, PlaylistError


BASE = 1795252800.0


def playlist(first, durations, target=2, ds=0, disc=(), ended=False, epoch=1,
             shift=0.0, gap_at=(), version=3, dates=True):
    """Segments <first>... of 2 s dated from BASE (+ <shift>), as if all had 2 s."""
    pdt0 = BASE + 2.0 * first + shift
    out = ["#EXTM3U", f"#EXT-X-VERSION:{version}", f"#EXT-X-TARGETDURATION:{target}",
           f"#EXT-X-MEDIA-SEQUENCE:{first}", f"#EXT-X-DISCONTINUITY-SEQUENCE:{ds}"]
    t = pdt0
    for i, d in enumerate(durations):
        seq = first + i
        if seq in gap_at:
            t += 5
        if seq in disc:
            out.append("#EXT-X-DISCONTINUITY")
        if dates:
            ms = round(t * 1000)
            import time as _t
            stamp = _t.strftime("%Y-%m-%dT%H:%M:%S", _t.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
            out.append(f"#EXT-X-PROGRAM-DATE-TIME:{stamp}")
        out.append(f"#EXTINF:{d:.3f},")
        out.append(f"{epoch}-{seq}.ts")
        t += d
    if ended:
        out.append("#EXT-X-ENDLIST")
    return "\n".join(out) + "\n"


def test_a_live_stream_passes():
    c = Checker()
    for first in range(0, 10):
        c.feed(playlist(first, [2.0] * 6))
    c.feed(playlist(10, [2.0] * 6, ended=True))
    c.feed(playlist(10, [2.0] * 6, ended=True))
    assert c.ended and c.playlists == 12 and len(c.segments) == 16


def test_discontinuity_sequence_rises_when_a_tag_slides_out():
    c = Checker()
    c.feed(playlist(0, [2.0] * 6, disc=(3,), gap_at=(3,)))
    c.feed(playlist(3, [2.0] * 6, ds=0, disc=(3,), gap_at=(3,)))
    c.feed(playlist(4, [2.0] * 6, ds=1, shift=5))
    with pytest.raises(PlaylistError, match="discontinuity sequence"):
        c.feed(playlist(5, [2.0] * 6, ds=0, shift=5))


def test_a_takeover_restarts_the_window():
    c = Checker()
    c.feed(playlist(100, [2.0] * 6))
    # the new owner: the next numbers, a discontinuity, a new epoch, one segment
    c.feed(playlist(106, [2.0], epoch=2, disc=(106,), shift=3))
    c.feed(playlist(106, [2.0, 2.0], epoch=2, disc=(106,), shift=3))


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.replace("#EXTM3U\n", ""), "#EXTM3U"),
    (lambda t: t.replace("#EXT-X-TARGETDURATION:2\n", ""), "TARGETDURATION"),
    (lambda t: t.replace("#EXTINF:2.000,", "#EXTINF:2.600,", 1), "rounds above"),
    (lambda t: t.replace("#EXTINF:2.000,", "#EXTINF:0.000,", 1), "not positive"),
    (lambda t: t.replace("1-3.ts", "1-9.ts"), "is named"),
    (lambda t: t.replace("1-3.ts", "seg3.ts"), "does not match"),
    (lambda t: t + "#EXT-X-ENDLIST\n#EXTINF:2.000,\n1-6.ts\n", "after EXT-X-ENDLIST"),
    (lambda t: t.replace("#EXT-X-VERSION:3", "#EXT-X-VERSION:2"), "VERSION 3"),
    (lambda t: t.replace("T09:20:04.000Z", "T09:20:04.500Z"), "does not follow"),
    (lambda t: t.replace("1-3.ts", "2-3.ts"), None),
    (lambda t: t.replace("1-0.ts\n", "1-0.ts\n#EXT-X-INDEPENDENT-SEGMENTS\n"),
     "after the first segment"),
    (lambda t: t[:-1], "newline"),
])
def test_one_playlist_rules(mutate, message):
    text = playlist(0, [2.0] * 6)
    Checker().feed(text)
    if message is None:                  # allowed
        Checker().feed(mutate(text))
        return
    with pytest.raises(PlaylistError, match=message):
        Checker().feed(mutate(text))


def test_rules_across_playlists():
    def fails(a, b, message):
        c = Checker()
        c.feed(a)
        with pytest.raises(PlaylistError, match=message):
            c.feed(b)
    base = playlist(10, [2.0] * 6)
    fails(base, playlist(9, [2.0] * 6), "went back")
    fails(base, playlist(10, [2.0] * 5), "last segment went back")
    fails(base, playlist(11, [2.0] * 6, target=3), "TARGETDURATION changed")
    fails(base, playlist(11, [2.0] * 6, epoch=2), "was 1-11.ts")
    fails(base, playlist(11, [2.0] * 6, shift=0.5), "dated")
    fails(base, playlist(14, [2.0] * 2), "3 target durations")
    fails(playlist(10, [2.0] * 6, ended=True), playlist(11, [2.0] * 6),
          "changed after EXT-X-ENDLIST")


def test_a_new_presentation_after_the_end():
    c = Checker()
    c.feed(playlist(10, [2.0] * 3, ended=True))
    c.feed(playlist(13, [4.0], target=4, disc=(13,), shift=60))
    assert c.presentations == 2


def test_dates():
    assert hlscheck.parse_date("2026-11-21T09:20:00.123Z") == pytest.approx(1795252800.123)
    assert hlscheck.parse_date("2026-11-21T10:20:00+01:00") == 1795252800
