"""Housekeeping: every file the gateway writes has a retention, so months of running fit a small disk.

- event clips (data_dir/clips/<camera>/<event_id>.<ext>): the oldest (by mtime) are deleted until the
  folder is under its quota and the disk keeps its minimum free space; a clip whose candidate is still
  pending in the outbox is NEVER deleted (the cloud has not fetched it yet), nor one touched in the last
  `min_age_s` (still being recorded, or linked but not yet in the outbox). Orphan temp files go too.
- outbox: acknowledged rows older than `outbox_sent_retention_s`.
- clip ledger: clips finished longer ago than `ledger_retention_s`.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.ledger import ClipLedger
from edge_agent.outbox import Outbox

log = logging.getLogger(__name__)

_DAY_S = 86400.0
_MIB = 1024 * 1024
# Files left by an interrupted atomic write (write to a temp name, then rename).
_TEMP_SUFFIXES = (".tmp", ".part", ".partial")


class RetentionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clips_quota_mb: int = Field(
        default=2048, ge=1, le=10_000_000,
        description="most MiB the event clips may hold; beyond it the oldest sent clips are deleted first",
    )
    min_free_mb: int = Field(
        default=256, ge=0, le=10_000_000,
        description="free MiB to keep on the clips' disk: the oldest sent clips are deleted below it, even "
        "under the quota (0: off)",
    )
    min_age_s: float = Field(
        default=300.0, ge=0, le=_DAY_S,
        description="a clip or temp file touched more recently than this is never deleted (it may still be "
        "being written, or not yet be in the outbox)",
    )
    outbox_sent_retention_s: float = Field(
        default=7 * _DAY_S, ge=0, le=365 * _DAY_S,
        description="how long an acknowledged outbox row is kept (for the record) before it is purged",
    )
    ledger_retention_s: float = Field(
        default=30 * _DAY_S, ge=0, le=3650 * _DAY_S,
        description="how long the ledger remembers a processed clip; keep it longer than clips stay in a "
        "watched folder, or they are processed again (under the same event ids)",
    )
    interval_s: float = Field(default=60.0, ge=1, le=_DAY_S, description="seconds between housekeeping runs")


@dataclass
class HousekeepingReport:
    deleted_files: int = 0
    deleted_bytes: int = 0
    temp_files_removed: int = 0
    kept_pending: int = 0  # clips that would have gone but whose candidate is still pending
    purged_outbox_rows: int = 0
    purged_ledger_rows: int = 0
    clips_bytes: int = 0  # what the clips folder holds after this run
    disk_free_bytes: int = 0
    errors: list[str] = field(default_factory=list)


def disk_free_bytes(path: Path) -> int:
    """Bytes available to the gateway on the file system holding `path` (or its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


@dataclass(frozen=True)
class _Clip:
    path: Path
    size: int
    mtime: float
    touched: float  # latest of mtime and ctime: a new hard link or a write both count
    links: int


class Housekeeper:
    def __init__(
        self,
        settings: RetentionSettings,
        clips_dir: Path,
        outbox: Outbox,
        ledger: ClipLedger | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clips_dir = Path(clips_dir)
        self.outbox = outbox
        self.ledger = ledger
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_report: HousekeepingReport | None = None

    # -- one pass ---------------------------------------------------------------------------------
    def run_once(self) -> HousekeepingReport:
        report = HousekeepingReport()
        self._clean_clips(report)  # first: on a full disk, the purges below need the space it frees
        try:
            report.purged_outbox_rows = self.outbox.purge_sent(self.settings.outbox_sent_retention_s)
        except OSError as exc:  # OutboxWriteError: a full or read-only disk; the ledger still gets its turn
            report.errors.append(f"outbox purge: {exc.strerror or exc}")
        if self.ledger is not None:
            try:
                report.purged_ledger_rows = self.ledger.purge(self.settings.ledger_retention_s)
            except OSError as exc:
                report.errors.append(f"ledger purge: {exc.strerror or exc}")
        report.disk_free_bytes = disk_free_bytes(self.clips_dir)
        over = report.clips_bytes > self.settings.clips_quota_mb * _MIB
        if report.deleted_files or report.temp_files_removed or over or report.errors:
            level = logging.WARNING if over or report.errors else logging.INFO
            message = ("clips over quota: the rest are pending or recent" if over
                       else "housekeeping deleted old files")
            log.log(level, message, extra=asdict(report))
        self.last_report = report
        return report

    def _scan(self, report: HousekeepingReport) -> list[_Clip]:
        now = self._clock()
        clips: list[_Clip] = []
        if not self.clips_dir.is_dir():
            return clips
        for path in self.clips_dir.rglob("*"):
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue  # deleted under us (a recorder finishing)
            if not path.is_file() or path.is_symlink():
                continue
            touched = max(st.st_mtime, st.st_ctime)
            if path.name.endswith(_TEMP_SUFFIXES):
                if now - touched >= self.settings.min_age_s and self._delete(path, report):
                    report.temp_files_removed += 1
                continue
            clips.append(_Clip(path, st.st_size, st.st_mtime, touched, st.st_nlink))
        return clips

    def _clean_clips(self, report: HousekeepingReport) -> None:
        clips = self._scan(report)
        pending = self.outbox.pending_event_ids()
        total = sum(c.size for c in clips)
        quota = self.settings.clips_quota_mb * _MIB
        # Deleting a hard link whose camera file still exists frees nothing on disk: only count real frees.
        short = max(0, self.settings.min_free_mb * _MIB - disk_free_bytes(self.clips_dir))
        now = self._clock()
        for clip in sorted(clips, key=lambda c: (c.mtime, c.path.name)):
            if total <= quota and short <= 0:
                break
            if clip.path.name.split(".")[0] in pending:
                report.kept_pending += 1
                continue
            if now - clip.touched < self.settings.min_age_s:
                continue
            if total <= quota and clip.links > 1:
                continue  # only short of disk, and this clip shares its bytes with the camera's file
            if self._delete(clip.path, report):
                total -= clip.size
                report.deleted_files += 1
                report.deleted_bytes += clip.size
                if clip.links == 1:
                    short -= clip.size
        report.clips_bytes = total

    @staticmethod
    def _delete(path: Path, report: HousekeepingReport) -> bool:
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False
        except OSError as exc:
            report.errors.append(f"{path.name}: {exc.strerror or exc}")
            return False

    # -- background -------------------------------------------------------------------------------
    def start(self) -> Housekeeper:
        """Run now, then every `interval_s`, in a daemon thread that logs a failure and keeps going."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="housekeeper", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # a locked or full disk must not end housekeeping for good
                log.exception("housekeeping failed; trying again at the next interval",
                              extra={"error": str(exc), "clips_dir": str(self.clips_dir)})
            self._stop.wait(self.settings.interval_s)
