"""Lambda batch handler, in-process runner, settings and the `vigia cloud` command, on embedded adapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from cloud.runtime.inprocess import InProcessCloud, percentile
from cloud.runtime.lambda_handler import process_batch
from cloud.runtime.wiring import build_pipeline
from cloud.settings import CloudSettings
from contracts import ClipRef
from tests.unit.cloud_factories import decide_by_candidate_score, make_candidate, write_avi


@pytest.fixture
def settings(tmp_path: Path) -> CloudSettings:
    write_avi(tmp_path / "incoming" / "cam-front" / "ev.avi")
    return CloudSettings(store="local", data_dir=tmp_path / "data", clip_root=tmp_path / "incoming",
                         max_attempts=2)


def sqs_event(*bodies: str) -> dict:
    return {"Records": [{"messageId": f"m{i}", "body": b, "eventSource": "aws:sqs"} for i, b in enumerate(bodies)]}


def test_lambda_batch_reports_only_retryable_failures(settings: CloudSettings) -> None:
    pipeline = build_pipeline(settings, decide_by_candidate_score)
    good = make_candidate(score=0.9, clip=ClipRef(kind="local", uri="cam-front/ev.avi")).model_dump_json()
    missing_clip = make_candidate(clip=ClipRef(kind="local", uri="cam-front/later.avi")).model_dump_json()
    result = process_batch(sqs_event(good, "garbage", missing_clip, good), pipeline)
    # malformed → dead-lettered and acknowledged; missing clip → retried; duplicate → acknowledged
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert len(list((settings.data_dir / "dead-letter").glob("*.json"))) == 1
    assert len((settings.data_dir / "notifications.jsonl").read_text().splitlines()) == 1


def test_lambda_batch_fails_the_record_if_dead_letter_is_down(settings: CloudSettings) -> None:
    pipeline = build_pipeline(settings, decide_by_candidate_score)

    def down(*a, **k):
        raise ConnectionError("dlq down")

    pipeline.dead_letter.send = down
    assert process_batch(sqs_event("garbage"), pipeline) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}


def test_inprocess_submit_latency_and_retries(settings: CloudSettings) -> None:
    cloud = InProcessCloud(settings, decide_by_candidate_score, retry_delay_s=0)
    for score in (0.9, 0.2, 0.95):
        assert cloud.submit(make_candidate(score=score)).score == score
    summary = cloud.latency_summary()
    assert summary["count"] == 3 and 0 <= summary["median_ms"] <= summary["p95_ms"] <= summary["max_ms"]
    confirmed = [s for s in cloud.samples if s.decision == "confirmed"]
    assert all(s.notified_at and s.notified_at >= s.submitted_at for s in confirmed)
    # a clip that never arrives: retried max_attempts times, then dead-lettered, never lost
    assert cloud.submit(make_candidate(clip=ClipRef(kind="local", uri="cam-front/never.avi"))) is None
    [letter] = [json.loads(p.read_text()) for p in (settings.data_dir / "dead-letter").glob("*.json")]
    assert "never.avi" in letter["error"] and json.loads(letter["raw_body"])["clip"]["uri"] == "cam-front/never.avi"
    notes = [json.loads(line) for line in (settings.data_dir / "notifications.jsonl").read_text().splitlines()]
    assert all(n["message"]["received_at"] <= n["message"]["notified_at"] for n in notes) and len(notes) == 2


def test_percentile() -> None:
    assert percentile([5, 1, 3, 2, 4], 50) == 3
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([7], 95) == 7


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VIGIA_STORE", "aws")
    monkeypatch.setenv("VIGIA_BUCKET", "media")
    with pytest.raises(ValidationError, match="VIGIA_TABLE, VIGIA_TOPIC_ARN, VIGIA_DLQ_URL"):
        CloudSettings()
    monkeypatch.setenv("VIGIA_STORE", "local")
    monkeypatch.setenv("VIGIA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VIGIA_MODELS_DIR", "/elsewhere")  # another component's variable is not an error
    settings = CloudSettings()
    assert settings.data_dir == tmp_path and settings.local_clip_root == tmp_path / "incoming"
    with pytest.raises(ValidationError, match="event_ttl_days"):
        CloudSettings(event_ttl_days=0)
    with pytest.raises(ValidationError, match="extra"):
        CloudSettings(bukket="typo")
    with pytest.raises(ValidationError, match="worker_heartbeat_s"):
        CloudSettings(worker_heartbeat_s=90, worker_visibility_s=60)


def test_cli_verify_prints_the_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vigia.cli import main

    write_avi(tmp_path / "clips" / "cam-front" / "ev.avi")
    candidate = make_candidate(score=0.9, clip=ClipRef(kind="local", uri="cam-front/ev.avi"))
    (tmp_path / "c.json").write_text(candidate.model_dump_json())
    args = ["cloud", "verify", "--candidate", str(tmp_path / "c.json"), "--clip-root", str(tmp_path / "clips"),
            "--data-dir", str(tmp_path / "data"), "--verifier", "tests.unit.cloud_factories:stand_in_verify_factory"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["decision"] == "confirmed"
    (tmp_path / "bad.json").write_text("{}")
    assert main([*args[:2], "--candidate", str(tmp_path / "bad.json"), *args[4:]]) == 1
    assert main([*args[:2], "--candidate", str(tmp_path / "none.json"), *args[4:]]) == 2


def test_real_verify_adapter_maps_unreadable_clips(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The adapter around cloud.verifier (models stubbed: the real model's end-to-end runs elsewhere)."""
    import cloud.verifier as verifier_pkg
    from cloud.ports import ClipUnreadable
    from cloud.runtime.verifier_adapter import real_verify

    seen: list = []

    class FakeVerifier:
        def __init__(self, **kwargs) -> None:
            seen.append(("init", sorted(kwargs), kwargs.get("learned")))

        def verify(self, candidate, frames):
            seen.append(("frames", [(t, f.shape) for t, f in frames]))
            return decide_by_candidate_score(candidate, None)

        def verify_clip(self, candidate, clip_path):
            raise verifier_pkg.ClipReadError(f"{clip_path.name}: corrupt")

    monkeypatch.setattr(verifier_pkg, "Verifier", FakeVerifier)
    verify = real_verify(CloudSettings(store="local", data_dir=tmp_path))
    # The embedded default consults the FP memories; no learned head unless VIGIA_VERIFIER_LEARNED_HEAD names one.
    assert seen == [("init", ["fp_memories", "learned", "settings"], None)]
    seen.clear()
    assert verify(make_candidate(score=0.9), None).decision == "confirmed"
    assert seen == [("frames", [(0.0, (24, 32, 3))])]
    with pytest.raises(ClipUnreadable, match="corrupt"):
        verify(make_candidate(), tmp_path / "x.avi")


def test_a_learned_head_is_loaded_only_with_its_checksum_pinned(tmp_path: Path) -> None:
    import numpy as np

    from cloud.runtime.verifier_adapter import learned_stage
    from cloud.verifier.settings import VerifierConfigError, VerifierEnv
    from models.learned.head import LearnedHead

    head = tmp_path / "head.json"
    digest = LearnedHead("e", [], np.zeros(1), np.ones(1), np.zeros(1), 0.0).save(head)
    assert learned_stage(VerifierEnv.from_environment()) is None
    with pytest.raises(VerifierConfigError, match="LEARNED_HEAD_SHA256"):
        learned_stage(VerifierEnv.from_environment(learned_head=str(head)))
    with pytest.raises(VerifierConfigError, match="sha256 differs"):
        learned_stage(VerifierEnv.from_environment(learned_head=str(head), learned_head_sha256="0" * 64))
    with pytest.raises(VerifierConfigError, match="LEARNED_HEAD_SHA256"):
        VerifierEnv.from_environment(learned_head=str(head), learned_head_sha256="not-hex")
    assert len(digest) == 64
