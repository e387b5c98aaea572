"""The demo's data dir: made by the demo, added to by every later run, and never anyone else's folder.

A folder is the demo's when it holds the marker file (or the layout an older demo left: `edge/` and
`cloud/events.sqlite3`). An empty or missing folder becomes one. Anything else is refused, so
`--data-dir ~` or `--data-dir /` can neither be wiped nor littered. Nothing in it is ever deleted:
the event store and the notifications file keep every run's events, each run adds a report under
`reports/` and a line to `runs.jsonl`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("vigia.demo")

MARKER_NAME = "vigia-data-dir.json"
MARKER_KIND = "vigia-demo"


class NotADataDir(ValueError):
    """The folder exists, is not empty and is not a Vigia demo data dir."""


@dataclass(frozen=True)
class DemoDataDir:
    root: Path

    @property
    def edge(self) -> Path:
        return self.root / "edge"

    @property
    def cloud(self) -> Path:
        return self.root / "cloud"

    @property
    def marker(self) -> Path:
        return self.root / MARKER_NAME

    @property
    def runs_path(self) -> Path:
        return self.root / "runs.jsonl"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def latest_report(self) -> Path:
        return self.root / "report.html"

    @classmethod
    def claim(cls, root: Path) -> DemoDataDir:
        """The data dir at `root`: created when missing or empty, reused when it is the demo's, else refused."""
        root = root.expanduser()
        store = cls(root)
        if root.exists() and not root.is_dir():
            raise NotADataDir(f"--data-dir {root} is a file, not a folder")
        if root.is_dir():
            if store.marker.exists():
                store._check_marker()
                return store
            if store._has_legacy_layout():
                log.info("adopting the data dir of an earlier demo", extra={"data_dir": str(root)})
            elif any(root.iterdir()):
                raise NotADataDir(
                    f"--data-dir {root} exists, is not empty and is not a Vigia data dir (no {MARKER_NAME}); "
                    "the demo writes only to a new or empty folder, or to one an earlier demo run made")
        root.mkdir(parents=True, exist_ok=True)
        store._write_marker()
        return store

    def _check_marker(self) -> None:
        try:
            kind = json.loads(self.marker.read_text()).get("kind")
        except (OSError, ValueError, AttributeError) as exc:
            raise NotADataDir(f"{self.marker} is unreadable ({exc}); not using {self.root}") from exc
        if kind != MARKER_KIND:
            raise NotADataDir(f"{self.root} is a Vigia data dir of kind {kind!r}, not the demo's")

    def _has_legacy_layout(self) -> bool:
        return (self.cloud / "events.sqlite3").is_file() and self.edge.is_dir()

    def _write_marker(self) -> None:
        doc = {"kind": MARKER_KIND, "schema_version": 1, "created_at": _now_iso(),
               "note": "written by `vigia demo`; later runs add to this folder and never delete from it"}
        self.marker.write_text(json.dumps(doc, indent=2) + "\n")

    # -- runs -------------------------------------------------------------------------------------
    def new_run_id(self) -> str:
        """A sortable, human-readable id (UTC start time); a suffix when two runs start in one second."""
        base = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        taken = {run.get("run_id") for run in self.runs()} | {p.stem for p in self.reports_dir.glob("*.html")}
        run_id, n = base, 1
        while run_id in taken:
            n += 1
            run_id = f"{base}-{n}"
        return run_id

    def runs(self) -> list[dict[str, Any]]:
        """Earlier runs, oldest first; a damaged line is logged and skipped."""
        if not self.runs_path.exists():
            return []
        found = []
        for number, line in enumerate(self.runs_path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                found.append(json.loads(line))
            except ValueError as exc:
                log.warning("runs.jsonl line skipped", extra={"line": number, "error": str(exc)})
        return found

    def record_run(self, record: dict[str, Any]) -> None:
        """Append one run's record in a single write, so an interrupted run never leaves half a line."""
        data = (json.dumps(record, sort_keys=True) + "\n").encode()
        fd = os.open(self.runs_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
