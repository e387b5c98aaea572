"""The outbox and the housekeeper on a REAL full disk and a REAL read-only file system (a 2 MiB tmpfs,
mounted for the test; needs root, as the test machine runs)."""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts import new_event_id
from edge_agent.ledger import ClipLedger, LedgerWriteError
from edge_agent.outbox import Outbox, OutboxWriteError
from edge_agent.retention import Housekeeper, RetentionSettings, disk_free_bytes

KIB = 1024
MIB = 1024 * KIB


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


def _unmount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        done = _mount("-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(disk))
    except FileNotFoundError:
        pytest.skip("no `mount` command on this machine: cannot make a real small disk")
    if done.returncode != 0:
        pytest.skip(f"mounting a 2 MiB tmpfs is not permitted here (needs root): {done.stderr.strip()}")
    yield disk
    _unmount(disk)


@pytest.fixture
def read_only_view(small_disk: Path, tmp_path: Path) -> Iterator[Path]:
    """The same small disk, seen through a read-only bind mount."""
    view = tmp_path / "ro"
    view.mkdir()
    done = _mount("--bind", str(small_disk), str(view))
    if done.returncode != 0:
        pytest.skip(f"bind mounts are not permitted here: {done.stderr.strip()}")
    try:
        done = _mount("-o", "remount,bind,ro", str(view))
        if done.returncode != 0:
            pytest.skip(f"read-only remount is not permitted here: {done.stderr.strip()}")
        yield view
    finally:
        _unmount(view)


def _fill(folder: Path, name: str = "filler") -> Path:
    """Write until the file system refuses: the disk is then really full."""
    path = folder / name
    with open(path, "wb", buffering=0) as f:
        chunk = bytes(64 * KIB)
        while True:
            try:
                f.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                if len(chunk) == 512:
                    break
                chunk = chunk[: len(chunk) // 2]
    return path


def test_full_disk_refuses_clearly_then_accepts_again_and_loses_nothing(small_disk: Path) -> None:
    box = Outbox(small_disk / "outbox.sqlite")
    try:
        earlier = [new_event_id() for _ in range(5)]
        for i, event_id in enumerate(earlier):
            assert box.put(event_id, "t", f"earlier-{i}".encode())
        filler = _fill(small_disk)
        assert disk_free_bytes(small_disk) < 4 * KIB

        candidate = new_event_id()
        with pytest.raises(OutboxWriteError) as refused:
            box.put(candidate, "t", bytes(100 * KIB))  # a candidate with its snapshot
        assert refused.value.reason == "disk full" and refused.value.errno == errno.ENOSPC
        assert "disk full" in str(refused.value) and "outbox" in str(refused.value)
        assert isinstance(refused.value, OSError)
        with pytest.raises(OutboxWriteError, match="disk full"):
            box.mark_sent(earlier[0])
        assert box.count_pending() == 5  # reading still works

        filler.unlink()  # the disk frees up: the same outbox accepts again, nothing earlier is lost
        assert box.put(candidate, "t", bytes(100 * KIB))
        box.mark_sent(earlier[0])
    finally:
        box.close()
    reopened = Outbox(small_disk / "outbox.sqlite")
    try:
        assert [m.event_id for m in reopened.pending()] == [*earlier[1:], candidate]
        assert [m.payload for m in reopened.pending()][:4] == [f"earlier-{i}".encode() for i in range(1, 5)]
        assert reopened.count_sent() == 1
    finally:
        reopened.close()


def test_read_only_file_system_refuses_clearly(small_disk: Path, read_only_view: Path) -> None:
    writer = Outbox(small_disk / "outbox.sqlite")
    try:
        kept, sent = new_event_id(), new_event_id()
        writer.put(kept, "t", b"accepted before")
        writer.put(sent, "t", b"acknowledged")
        writer.mark_sent(sent)
        clip = small_disk / "clips" / "cam1" / f"{sent}.avi"
        clip.parent.mkdir(parents=True)
        clip.write_bytes(bytes(1100 * KIB))
        box = Outbox(read_only_view / "outbox.sqlite")  # an existing outbox, now on a read-only mount
        try:
            with pytest.raises(OutboxWriteError, match="read-only") as refused:
                box.put(new_event_id(), "t", b"m")
            assert refused.value.reason == "read-only" and refused.value.errno == errno.EROFS
            assert [m.event_id for m in box.pending()] == [kept]

            # housekeeping on a read-only disk reports what it could not do, and does not raise
            settings = RetentionSettings(clips_quota_mb=1, min_free_mb=0, min_age_s=0, outbox_sent_retention_s=0)
            report = Housekeeper(settings, read_only_view / "clips", box, clock=lambda: time.time() + 60).run_once()
            assert (report.deleted_files, report.purged_outbox_rows) == (0, 0)
            assert len(report.errors) == 2 and "Read-only file system" in report.errors[0]
            assert report.errors[1].startswith("outbox purge:") and "read-only" in report.errors[1]
            assert clip.exists() and box.stats().sent == 1
        finally:
            box.close()
    finally:
        writer.close()
    with pytest.raises(OutboxWriteError, match="read-only"):
        Outbox(read_only_view / "new.sqlite")  # a new outbox in a read-only folder
    with pytest.raises(OutboxWriteError, match="read-only"):
        Outbox(read_only_view / "sub" / "outbox.sqlite")  # ... or one whose folder cannot be made
    with pytest.raises(LedgerWriteError, match="read-only"):
        ClipLedger(read_only_view / "ledger.sqlite")  # the clip ledger fails the same clear way


def test_housekeeper_frees_a_full_disk_but_keeps_pending_clips(small_disk: Path) -> None:
    box = Outbox(small_disk / "outbox.sqlite")
    clips = small_disk / "clips" / "cam1"
    clips.mkdir(parents=True)
    try:
        ids = [new_event_id() for _ in range(5)]
        for event_id in ids:
            box.put(event_id, "t", b"m")
        for event_id in ids[1:]:
            box.mark_sent(event_id)  # ids[0] is still waiting: its clip must stay
        # the disk fills with event clips: a small pending one, three sent ones, then whatever fits
        sizes = [100 * KIB, 400 * KIB, 400 * KIB, 400 * KIB]
        paths = [clips / f"{event_id}.avi" for event_id in ids[:4]]
        for path, size in zip(paths, sizes, strict=True):
            path.write_bytes(bytes(size))
        paths.append(_fill(clips, f"{ids[4]}.avi"))
        for i, path in enumerate(paths):
            stamp = time.time() - 3600 + i * 60
            os.utime(path, (stamp, stamp))
        with pytest.raises(OutboxWriteError, match="disk full"):
            box.put(new_event_id(), "t", bytes(100 * KIB))

        settings = RetentionSettings(clips_quota_mb=2048, min_free_mb=1, min_age_s=0)
        report = Housekeeper(settings, small_disk / "clips", box).run_once()

        assert disk_free_bytes(small_disk) >= MIB and report.disk_free_bytes >= MIB
        assert paths[0].exists() and report.kept_pending == 1
        # the three oldest sent clips free 1200 KiB, enough: the newest stays
        assert [p.exists() for p in paths] == [True, False, False, False, True]
        assert (report.deleted_files, report.deleted_bytes) == (3, 1200 * KIB)
        assert box.put(new_event_id(), "t", bytes(100 * KIB))
    finally:
        box.close()
