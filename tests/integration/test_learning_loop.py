"""The learning loop on the embedded default, scripted (issue 9, first "Done means"): footage with a recurring
false alert (a person's photograph hung as a poster), `vigia demo` twice on one data dir, `vigia feedback ID
not-person` between the runs. The second run does not notify the poster again; the people walking past it
still alert. The steps live in tests/integration/learning_loop.py so other tests can extend the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.topics import CONFIG_SHADOW_NAME
from models.fp_memory import FpMemoryStore
from tests.integration import learning_loop as loop
from vigia.cli import main

pytestmark = pytest.mark.integration


def test_a_flagged_false_alert_is_not_notified_again_and_people_still_are(
        tmp_path: Path, vtest: Path, pictures, gateway_model_dir, capsys) -> None:
    from cloud.feedback.shadow_refs import LocalShadowBackend

    camera = loop.make_footage(vtest, pictures["camera"], tmp_path / "footage")
    config = loop.gateway_config(tmp_path / "gateway.json")
    data = tmp_path / "demo"

    # run 1: the poster alerts on both quiet clips (it recurs), the walkers alert too
    first = loop.demo(data, [camera], config)
    by_clip = {loop.clip_of(data, e): (e, decision) for e, decision in first.items()}
    assert {clip: decision for clip, (_, decision) in by_clip.items()} == {
        "a-quiet.avi": "confirmed", "b-quiet-again.avi": "confirmed", "c-walkers.avi": "confirmed"}
    assert sorted(loop.notified(data)) == sorted(first)
    poster_event = by_clip["a-quiet.avi"][0]

    # the customer: "this was not a person"
    capsys.readouterr()
    assert main(["--log-level", "WARNING", "feedback", poster_event, "not-person", "--note", "a poster",
                 "--by", "customer-app", "--data-dir", str(data)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["label"], answer["decision"]) == ("not-person", "confirmed")
    assert main(["events", "list", "--label", "not-person", "--json", "--data-dir", str(data)]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["event_id"] == poster_event and listed["feedback"][0]["by"] == "customer-app"
    desired = LocalShadowBackend(data / "cloud" / "shadows.json").get("demo-gateway", CONFIG_SHADOW_NAME)
    ref = desired["state"]["desired"]["cameras"][loop.CAMERA]["fp_memory"]

    # run 2: the gateway installed the new memory and the poster raises nothing; the walkers still alert
    second = loop.demo(data, [camera], config)
    assert {loop.clip_of(data, e): decision for e, decision in second.items()} == {"c-walkers.avi": "confirmed"}
    notified = loop.notified(data)
    assert len(notified) == 4 and notified[-1] in second and notified.count(poster_event) == 1
    installed = FpMemoryStore(data / "edge" / "fp_memory").get(loop.CAMERA)
    assert (installed.version, installed.content_sha256()) == (ref["version"], ref["sha256"])
    assert [e.source_event_id for e in installed.entries] == [poster_event] * len(installed.entries)

    # the review manifest: the sampler picks the flagged event, with its reason, and copies its media
    capsys.readouterr()
    assert main(["--log-level", "WARNING", "sample", "--since", "30d", "--random-share", "0", "--json",
                 "--data-dir", str(data)]) == 0
    result = json.loads(capsys.readouterr().out)
    review = data / "cloud" / "review" / result["run_id"]
    manifest = json.loads((review / "manifest.json").read_text())
    picked = {e["event_id"]: e for e in manifest["events"]}
    assert "flagged_by_customer" in picked[poster_event]["reasons"]
    assert all(e["reasons"] for e in manifest["events"])
    csv_rows = (review / "manifest.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in csv_rows].count(poster_event) == 1

    # the console (its HTTP API, as the page calls it) shows both runs' events and the flag
    import threading
    import urllib.request

    from cloud.api import build_console
    from cloud.settings import CloudSettings

    server = build_console(CloudSettings(store="local", data_dir=data / "cloud"), cache_dir=tmp_path / "cache",
                           port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with urllib.request.urlopen(f"{server.url}/api/events?limit=50", timeout=30) as answer:
            listed = json.loads(answer.read())
    finally:
        server.shutdown()
    shown = {row["event_id"]: row for row in listed["events"]}
    assert set(first) | set(second) <= set(shown)
    assert shown[poster_event]["label"] == "not-person"
