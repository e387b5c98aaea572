from __future__ import annotations

import functools
import logging
import os
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts import new_event_id
from edge_agent.ledger import ClipLedger
from edge_agent.outbox import Outbox
from edge_agent.retention import Housekeeper, RetentionSettings
from tests.waiting import wait_for

_wait = functools.partial(wait_for, timeout=15.0)

MIB = 1024 * 1024
DAY = 86400.0


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _settings(**overrides) -> RetentionSettings:
    base = {"clips_quota_mb": 2, "min_free_mb": 0, "min_age_s": 0}
    return RetentionSettings(**(base | overrides))


def _clip(clips: Path, camera: str, event_id: str, age_s: float, size: int = MIB // 2, ext: str = ".avi") -> Path:
    folder = clips / camera
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{event_id}{ext}"
    path.write_bytes(bytes(size))
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_quota_deletes_the_oldest_sent_clips_and_never_a_pending_one(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    outbox = Outbox(tmp_path / "outbox.sqlite")
    ids = [new_event_id() for _ in range(6)]
    paths = [_clip(clips, "cam1" if i % 2 else "cam2", event_id, age_s=6000 - i * 600)
             for i, event_id in enumerate(ids)]  # ids[0] is the oldest
    for event_id in ids:
        outbox.put(event_id, "t", b"m")
    for event_id in (ids[1], ids[3], ids[4], ids[5]):
        outbox.mark_sent(event_id)  # ids[0] and ids[2] are still waiting for the broker

    report = Housekeeper(_settings(), clips, outbox).run_once()

    assert [p.exists() for p in paths] == [True, False, True, False, True, True]
    assert (report.deleted_files, report.deleted_bytes, report.kept_pending) == (2, MIB, 2)
    assert report.clips_bytes == 2 * MIB and report.errors == []
    again = Housekeeper(_settings(), clips, outbox).run_once()
    assert (again.deleted_files, again.clips_bytes) == (0, 2 * MIB)  # under quota: nothing more goes


def test_a_clip_touched_recently_is_kept_even_with_an_old_mtime(tmp_path: Path) -> None:
    """A camera's clip linked into clips/ keeps the camera's mtime: its fresh ctime protects it until it is
    in the outbox."""
    clips = tmp_path / "clips"
    outbox = Outbox(tmp_path / "outbox.sqlite")
    linked = _clip(clips, "cam1", new_event_id(), age_s=3 * DAY, size=3 * MIB)
    report = Housekeeper(_settings(min_age_s=300), clips, outbox).run_once()
    assert linked.exists() and report.deleted_files == 0 and report.clips_bytes == 3 * MIB


def test_orphan_temp_files_go_once_old_enough(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    outbox = Outbox(tmp_path / "outbox.sqlite")
    temp = _clip(clips, "cam1", "snapshot", age_s=0, size=100, ext=".jpg.tmp")
    clip = _clip(clips, "cam1", new_event_id(), age_s=0, size=100)
    keeper = Housekeeper(_settings(min_age_s=300), clips, outbox, clock=_Clock(time.time()))
    assert keeper.run_once().temp_files_removed == 0 and temp.exists()  # may still be being written
    later = Housekeeper(_settings(min_age_s=300), clips, outbox, clock=_Clock(time.time() + 600))
    report = later.run_once()
    assert report.temp_files_removed == 1 and not temp.exists()
    assert clip.exists() and report.clips_bytes == 100


def test_sent_rows_and_ledger_entries_go_after_their_retention(tmp_path: Path) -> None:
    clock = _Clock(1_700_000_000.0)
    outbox = Outbox(tmp_path / "outbox.sqlite", clock=clock)
    ledger = ClipLedger(tmp_path / "ledger.sqlite", clock=clock)
    source = tmp_path / "cam1-0001.mp4"
    source.write_bytes(b"clip")
    old, recent, waiting = new_event_id(), new_event_id(), new_event_id()
    for event_id in (old, recent, waiting):
        outbox.put(event_id, "t", b"m")
    outbox.mark_sent(old)
    ledger.begin(str(source), "cam1")
    ledger.finish(str(source), frames=10, candidates=1)
    clock.now += 6 * DAY
    outbox.mark_sent(recent)
    clock.now += 2 * DAY  # `old` was sent 8 days ago, `recent` 2 days ago

    settings = _settings(outbox_sent_retention_s=7 * DAY, ledger_retention_s=30 * DAY)
    report = Housekeeper(settings, tmp_path / "clips", outbox, ledger).run_once()
    assert (report.purged_outbox_rows, report.purged_ledger_rows) == (1, 0)
    assert outbox.count_sent() == 1 and outbox.pending_event_ids() == {waiting}
    assert ledger.is_done(str(source))

    clock.now += 23 * DAY
    report = Housekeeper(settings, tmp_path / "clips", outbox, ledger).run_once()
    assert (report.purged_outbox_rows, report.purged_ledger_rows) == (1, 1)
    assert not ledger.is_done(str(source)) and outbox.count_pending() == 1


def test_the_background_thread_logs_a_failure_and_keeps_going(tmp_path: Path, caplog) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    broken = ClipLedger(tmp_path / "ledger.sqlite")
    broken.close()  # every purge now fails
    keeper = Housekeeper(_settings(interval_s=1), tmp_path / "clips", outbox, broken)
    caplog.set_level(logging.ERROR, logger="edge_agent.retention")
    keeper.start()
    try:
        assert _wait(lambda: any(r.getMessage().startswith("housekeeping failed") for r in caplog.records))
        assert keeper.last_report is None
        keeper.ledger = ClipLedger(tmp_path / "ledger.sqlite")  # the cause goes away
        assert _wait(lambda: keeper.last_report is not None)
        assert any(t.name == "housekeeper" and t.daemon for t in threading.enumerate())
    finally:
        keeper.stop()
    assert not any(t.name == "housekeeper" for t in threading.enumerate())


def test_settings_are_bounded_and_strict() -> None:
    defaults = RetentionSettings()
    assert (defaults.clips_quota_mb, defaults.outbox_sent_retention_s, defaults.ledger_retention_s,
            defaults.interval_s) == (2048, 7 * DAY, 30 * DAY, 60)
    with pytest.raises(ValidationError, match="clips_quota_mb"):
        RetentionSettings(clips_quota_mb=0)
    with pytest.raises(ValidationError, match="interval_s"):
        RetentionSettings(interval_s=0.1)
    with pytest.raises(ValidationError, match="quota_gb"):
        RetentionSettings(quota_gb=2)


