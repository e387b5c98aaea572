"""`vigia demo` end to end on the embedded default: the real gateway model and the real verifier, twice on one
data dir (the second run adds to the store the first one left)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from tests.footage import cut

pytestmark = pytest.mark.integration


def _demo(data: Path, *sources: Path) -> str:
    args = [a for source in sources for a in ("--source", str(source))]
    result = subprocess.run([sys.executable, "-m", "vigia.cli", "--log-level", "WARNING", "demo", *args,
                             "--data-dir", str(data)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _stored(data: Path) -> dict[str, str]:
    """event id → verdict, as the event store holds them."""
    with closing(sqlite3.connect(data / "cloud" / "events.sqlite3")) as db:
        return {event_id: json.loads(doc)["decision"] for event_id, doc in db.execute("SELECT event_id, doc "
                                                                                      "FROM events")}


def _runs(data: Path) -> list[dict[str, tuple[str, str]]]:
    """Per run, event id → (camera, verdict), from the demo's own ledger."""
    lines = (data / "runs.jsonl").read_text().splitlines()
    return [{e["event_id"]: (e["camera_id"], e["decision"]) for e in json.loads(line)["events"]} for line in lines]


def _notified(data: Path) -> list[tuple[str, str]]:
    lines = (data / "cloud" / "notifications.jsonl").read_text().splitlines()
    return [(n["message"]["event_id"], n["attributes"]["verdict"]) for n in map(json.loads, lines)]


def test_demo_verdicts_store_report_and_a_second_run_that_adds(tmp_path: Path, vtest: Path, tree_clip: Path,
                                                               gateway_model_dir) -> None:
    plaza = cut(vtest, tmp_path / "plaza.avi", 8)  # people walking across a plaza
    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(b"\x00not a video" * 64)
    data = tmp_path / "demo"

    # run 1: vtest's walkers are confirmed; tree.avi's hand at the lens (23.5-26.4 s, a partial body) is left
    # uncertain: kept for review, never notified. (Read with its real time stamps, every frame of the hand,
    # the verifier scores it 0.44-0.59, between its reject and confirm bounds.)
    out = _demo(data, plaza, tree_clip, corrupt)
    (first,) = _runs(data)
    assert sorted(first.values()) == [("plaza", "confirmed"), ("tree", "uncertain")], out
    assert "candidates       2 sent by the gateway" in out and "confirmed alerts 1" in out
    assert "uncertain        1" in out and "unreadable: " in out and "broken.mp4" in out
    assert _stored(data) == {event_id: verdict for event_id, (_, verdict) in first.items()}
    (confirmed,) = [e for e, (_, verdict) in first.items() if verdict == "confirmed"]
    assert _notified(data) == [(confirmed, "confirmed")]
    page = (data / "report.html").read_text()
    assert all(event_id in page for event_id in first)
    assert page.count("<img") == 2 and "CONFIRMED" in page and "UNCERTAIN" in page
    clips = list((data / "cloud" / "objects" / "clips" / "plaza").rglob(f"{confirmed}.*"))
    assert {p.suffix for p in clips} >= {".mkv", ".jpg"}

    # run 2 on the same data dir: the first run's rows, notification and report stay; new ones are added
    out = _demo(data, plaza)
    first_again, second = _runs(data)
    assert first_again == first and list(second.values()) == [("plaza", "confirmed")]
    assert not set(second) & set(first)
    assert "1 earlier run(s)" in out and "(1 added to 2 from earlier runs)" in out
    assert _stored(data) == {event_id: verdict for run in (first, second) for event_id, (_, verdict) in run.items()}
    assert _notified(data) == [(confirmed, "confirmed"), (next(iter(second)), "confirmed")]
    latest = (data / "report.html").read_text()
    assert next(iter(second)) in latest and not any(event_id in latest for event_id in first)
    reports = [data / json.loads(line)["report"] for line in (data / "runs.jsonl").read_text().splitlines()]
    assert sorted(p.name for p in (data / "reports").iterdir()) == sorted(p.name for p in reports)
    assert all(event_id in reports[0].read_text() for event_id in first) and reports[1].read_text() == latest
    assert all(p.exists() for p in clips)
