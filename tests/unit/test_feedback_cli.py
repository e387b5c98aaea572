"""`vigia events list` and `vigia feedback` on the embedded default: table and JSON, filters, and one clear
stderr line with exit status 2 for an unknown event, a malformed label, a bad --since or a missing store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.settings import CloudSettings
from contracts import new_event_id
from tests.unit.feedback_helpers import stand_in_cloud, store_event
from vigia.cli import main
from vigia.commands.events_cmd import parse_since


@pytest.fixture
def data(tmp_path: Path, pictures) -> tuple[Path, dict[str, str]]:
    settings = CloudSettings(store="local", data_dir=tmp_path / "cloud")
    cloud = stand_in_cloud(settings)
    ids = {"confirmed": store_event(cloud, pictures["astronaut"], score=0.9, camera="porch"),
           "rejected": store_event(cloud, pictures["coffee"], score=0.2, camera="yard", minutes=5)}
    return settings.data_dir, ids


def test_list_as_table_and_json_with_filters(data, capsys) -> None:
    folder, ids = data
    assert main(["events", "list", "--data-dir", str(folder)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["event", "id", "camera"]
    assert [line.split()[0] for line in table[2:]] == [ids["rejected"], ids["confirmed"]]
    assert main(["events", "list", "--verdict", "confirmed", "--json", "--data-dir", str(folder)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["event_id"], row["camera_id"], row["decision"], row["label"]) == (
        ids["confirmed"], "porch", "confirmed", None)
    assert main(["events", "list", "--camera", "nowhere", "--data-dir", str(folder)]) == 0
    assert capsys.readouterr().out.strip() == "no events match"


def test_feedback_then_list_by_label(data, capsys) -> None:
    folder, ids = data
    assert main(["feedback", ids["rejected"], "person", "--by", "ana", "--note", "hidden by the hedge",
                 "--data-dir", str(folder)]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "person"
    assert main(["events", "list", "--label", "person", "--json", "--data-dir", str(folder)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["event_id"] == ids["rejected"]
    assert [(f["label"], f["by"], f["note"]) for f in row["feedback"]] == [("person", "ana", "hidden by the hedge")]


@pytest.mark.parametrize(("args", "message"), [
    (["feedback", "{unknown}", "person"], "no event '"),
    (["feedback", "not-an-event", "person"], "no event 'not-an-event' in the event store"),
    (["feedback", "{confirmed}", "cat"], "label 'cat' is not one of person, not-person, unsure"),
    (["feedback", "{confirmed}", "person", "--note", "x" * 501], "note: String should have at most 500"),
    (["events", "list", "--since", "yesterday"], "--since 'yesterday': give a duration like 30m"),
    (["events", "list", "--label", "dog"], "label 'dog' is not one of"),
])
def test_bad_input_is_one_clear_line_and_exit_2(data, capsys, args, message) -> None:
    folder, ids = data
    argv = [a.format(unknown=new_event_id(), **ids) for a in args]
    assert main([*argv, "--data-dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_missing_store_is_named_not_created(tmp_path: Path, capsys) -> None:
    assert main(["events", "list", "--data-dir", str(tmp_path / "nothing")]) == 2
    assert "no event store at" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()


def test_since_accepts_durations_and_iso_times() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("2026-11-28T08:00:00Z") == datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    assert parse_since("2026-11-28") == datetime(2026, 11, 28, tzinfo=UTC)
