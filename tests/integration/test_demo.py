"""`vigia demo` end to end on the embedded default: the real gateway model and the real verifier."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.footage import cut

pytestmark = pytest.mark.integration


def test_demo_runs_gateway_and_verifier_and_writes_its_report(tmp_path: Path, vtest: Path, gateway_model_dir) -> None:
    clip = cut(vtest, tmp_path / "plaza.avi", 8)
    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(b"\x00not a video" * 64)

    data = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "vigia.cli", "demo", "--source", str(clip), "--source",
                             str(corrupt), "--data-dir", str(data)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "confirmed alerts 1" in out, out
    assert "unreadable: " in out and "broken.mp4" in out
    html = (data / "report.html").read_text()
    assert html.count("<img") == 1 and "CONFIRMED" in html
    notes = [json.loads(line) for line in (data / "cloud" / "notifications.jsonl").read_text().splitlines()]
    assert len(notes) == 1 and notes[0]["attributes"]["verdict"] == "confirmed"
    event_id = notes[0]["message"]["event_id"]
    with sqlite3.connect(data / "cloud" / "events.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] >= 1
    clips = list((data / "cloud" / "objects" / "clips" / "plaza").rglob(f"{event_id}.*"))
    assert {p.suffix for p in clips} >= {".avi", ".jpg"}
