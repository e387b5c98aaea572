from __future__ import annotations

import os
from pathlib import Path

import pytest

from contracts.ids import event_id_time, validate_event_id
from edge_agent.ledger import (
    AnnouncedEvent,
    ClipLedger,
    clip_event_id,
    clip_identity,
    deterministic_event_id,
)

WALL = 1_700_000_000.0


class _Clock:
    def __init__(self, now: float = WALL) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _clip(folder: Path, name: str = "cam1-0001.mp4", data: bytes = b"video bytes") -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def test_an_interrupted_clip_resumes_with_its_announced_events_after_a_reopen(tmp_path: Path) -> None:
    clip = _clip(tmp_path)
    ledger = ClipLedger(tmp_path / "ledger.sqlite")
    ledger.begin(str(clip), "cam1")
    ledger.record_event(str(clip), "01HZZZZZZZZZZZZZZZZZZZZZZA", 1.5, 4.0)
    ledger.close()  # the process dies before finish()

    reopened = ClipLedger(tmp_path / "ledger.sqlite")
    assert not reopened.is_done(str(clip))
    assert reopened.announced(str(clip)) == [AnnouncedEvent("01HZZZZZZZZZZZZZZZZZZZZZZA", 1.5, 4.0)]
    reopened.begin(str(clip), "cam1")  # the re-run keeps what was already announced
    reopened.record_event(str(clip), "01HZZZZZZZZZZZZZZZZZZZZZZB", 9.0, 12.0)
    reopened.finish(str(clip), frames=300, candidates=2)
    assert reopened.is_done(str(clip))
    assert [e.event_id for e in reopened.announced(str(clip))] == [
        "01HZZZZZZZZZZZZZZZZZZZZZZA", "01HZZZZZZZZZZZZZZZZZZZZZZB"]
    reopened.close()
    (tmp_path / "sub").mkdir()
    assert ClipLedger(tmp_path / "ledger.sqlite").is_done(str(tmp_path / "sub" / ".." / clip.name))  # resolved


def test_a_rewritten_file_is_a_new_clip(tmp_path: Path) -> None:
    clip = _clip(tmp_path)
    ledger = ClipLedger(tmp_path / "ledger.sqlite")
    ledger.begin(str(clip), "cam1")
    ledger.record_event(str(clip), "01HZZZZZZZZZZZZZZZZZZZZZZA", 1.0, 2.0)
    ledger.finish(str(clip), frames=10, candidates=1)
    first = clip_identity(clip)

    clip.write_bytes(b"another minute of video")  # the camera reuses the name
    os.utime(clip, ns=(first.mtime_ns + 60 * 10**9, first.mtime_ns + 60 * 10**9))
    assert clip_identity(clip) != first
    assert not ledger.is_done(str(clip))
    assert ledger.announced(str(clip)) == []
    ledger.begin(str(clip), "cam1")
    assert ledger.announced(str(clip)) == [] and ledger.count() == 1


def test_an_unreadable_clip_is_done_and_streams_are_never_recorded(tmp_path: Path) -> None:
    clip = _clip(tmp_path)
    ledger = ClipLedger(tmp_path / "ledger.sqlite")
    ledger.begin(str(clip), "cam1")
    ledger.finish(str(clip), frames=0, candidates=0, error="no frame size")
    assert ledger.is_done(str(clip))  # not retried unless the file changes

    stream = "rtsp://camera.local/stream1"
    ledger.begin(stream, "cam2")
    ledger.record_event(stream, "01HZZZZZZZZZZZZZZZZZZZZZZA", 1.0, 2.0)
    ledger.finish(stream, frames=5, candidates=1)
    assert not ledger.is_done(stream) and ledger.announced(stream) == [] and ledger.count() == 1


def test_recording_before_begin_is_refused(tmp_path: Path) -> None:
    clip = _clip(tmp_path)
    ledger = ClipLedger(tmp_path / "ledger.sqlite")
    with pytest.raises(ValueError, match="before begin"):
        ledger.record_event(str(clip), "01HZZZZZZZZZZZZZZZZZZZZZZA", 1.0, 2.0)
    with pytest.raises(ValueError, match="before begin"):
        ledger.finish(str(clip), frames=1, candidates=0)
    with pytest.raises(FileNotFoundError):
        ledger.begin(str(tmp_path / "gone.mp4"), "cam1")


def test_purge_forgets_old_clips_only(tmp_path: Path) -> None:
    clock = _Clock()
    ledger = ClipLedger(tmp_path / "ledger.sqlite", clock=clock)
    old, recent, abandoned = (_clip(tmp_path, f"c{i}.mp4") for i in range(3))
    ledger.begin(str(abandoned), "cam1")  # interrupted and never resumed
    ledger.begin(str(old), "cam1")
    ledger.record_event(str(old), "01HZZZZZZZZZZZZZZZZZZZZZZA", 1.0, 2.0)
    ledger.finish(str(old), frames=1, candidates=1)
    clock.now += 10 * 86400
    ledger.begin(str(recent), "cam1")
    ledger.finish(str(recent), frames=1, candidates=0)
    clock.now += 86400

    assert ledger.purge(older_than_s=5 * 86400) == 2
    assert not ledger.is_done(str(old)) and ledger.announced(str(old)) == []
    assert ledger.is_done(str(recent)) and ledger.count() == 1


def test_deterministic_ids_are_valid_stable_and_sort_by_time() -> None:
    a = deterministic_event_id(WALL, "gw", "cam1", "clip-key", "1.5")
    assert validate_event_id(a) == a
    assert deterministic_event_id(WALL, "gw", "cam1", "clip-key", "1.5") == a
    assert deterministic_event_id(WALL, "gw", "cam1", "clip-key", "1.6") != a
    assert deterministic_event_id(WALL, "gw", "cam1clip-key", "1.5") != a  # parts are not just concatenated
    assert event_id_time(a).timestamp() == WALL
    later = deterministic_event_id(WALL + 0.001, "gw", "cam1", "clip-key", "0.0")
    assert sorted([later, a]) == [a, later]
    with pytest.raises(ValueError, match="wall_start"):
        deterministic_event_id(-1.0, "x")
    with pytest.raises(ValueError, match="at least one part"):
        deterministic_event_id(WALL)


def test_clip_event_id_rounds_the_start_to_a_tenth(tmp_path: Path) -> None:
    ident = clip_identity(_clip(tmp_path))
    a = clip_event_id("gw", "cam1", ident, WALL, 12.34)
    assert clip_event_id("gw", "cam1", ident, WALL, 12.31) == a
    assert clip_event_id("gw", "cam1", ident, WALL, 12.46) != a
    assert clip_event_id("gw", "cam2", ident, WALL, 12.34) != a
    assert event_id_time(a).timestamp() == pytest.approx(WALL + 12.3, abs=1e-3)
