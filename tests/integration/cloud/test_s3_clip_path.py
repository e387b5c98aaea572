"""The S3 clip path against moto server over HTTP: the gateway's publisher uploads a candidate's segment under
its own prefix before publishing it, and the cloud's S3 clip source fetches exactly that segment for the
pipeline. While S3 is unreachable the candidate is retried and nothing leaves the outbox early."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import boto3
import pytest
from cloud_moto import Aws

from cloud.runtime.wiring import build_pipeline
from contracts import Candidate, ClipRef
from edge_agent.clip_upload.s3 import S3Uploader
from edge_agent.outbox import Outbox
from edge_agent.publisher import OutboxPublisher, put_candidate
from edge_agent.segments import sha256_file
from edge_agent.transport.base import NotConnectedError
from tests.unit.cloud_factories import decide_by_candidate_score, make_candidate, write_avi

pytestmark = pytest.mark.integration


class RecordingTransport:
    """Stands in for the broker, which this test is not about (tests/integration/iot covers Mosquitto)."""

    def __init__(self) -> None:
        self.is_connected = True
        self.published: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 10.0) -> None:
        if not self.is_connected:
            raise NotConnectedError("down")
        self.published.append((topic, payload))

    def published_candidates(self) -> list[bytes]:
        return [p for t, p in self.published if "/candidates" in t]

    def candidates(self) -> list[Candidate]:
        return [Candidate.model_validate_json(p) for p in self.published_candidates()]


def local_candidate(clips: Path, frames: int = 6) -> Candidate:
    probe = make_candidate(score=0.9)
    path = write_avi(clips / probe.camera_id / f"{probe.event_id}.avi", frames=frames)
    return probe.model_copy(update={"clip": ClipRef(
        kind="local", uri=path.relative_to(clips).as_posix(), sha256=sha256_file(path),
        size_bytes=path.stat().st_size, fps=5.0)})


def publisher(outbox: Outbox, transport: RecordingTransport, uploader: S3Uploader, clips: Path) -> OutboxPublisher:
    return OutboxPublisher(outbox, transport, "gw-1", heartbeat_interval_s=3600, backoff_min_s=0.01,
                           backoff_max_s=0.02, uploader=uploader, clips_root=clips)


def test_the_segment_lands_at_the_gateways_prefix_and_the_cloud_decides_on_it(aws: Aws, tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    candidate = local_candidate(clips, frames=6)
    put_candidate(outbox, candidate)
    transport = RecordingTransport()
    publisher(outbox, transport, S3Uploader("vigia-media", "gw-1"), clips).run_once()

    [sent] = transport.candidates()
    key = f"gateways/gw-1/clips/cam-front/{candidate.event_id}.avi"
    assert sent.clip is not None and sent.clip.uri == f"s3://vigia-media/{key}"
    body = (clips / candidate.clip.uri).read_bytes()
    assert (sent.clip.kind, sent.clip.sha256, sent.clip.size_bytes) == ("s3", hashlib.sha256(body).hexdigest(),
                                                                        len(body))
    # (moto accepts the Content-MD5 / x-amz-checksum-sha256 headers without enforcing them; S3 does)
    stored = aws.s3.get_object(Bucket="vigia-media", Key=key)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == candidate.clip.sha256
    assert outbox.count_pending() == 0

    # what the IoT rule makes of the published candidate: the identity comes from the connection
    envelope = json.dumps({"candidate": json.loads(transport.published_candidates()[0]), "thing_name": "gw-1",
                           "received_at": 1764500000000})
    verdict = build_pipeline(aws.settings, decide_by_candidate_score).process(envelope)
    assert verdict is not None
    assert (verdict.decision, verdict.frames_examined) == ("confirmed", 6)  # the six frames the gateway wrote


def test_a_presigned_put_lands_at_the_same_key(aws: Aws, tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    candidate = local_candidate(clips)
    put_candidate(outbox, candidate)
    signer = boto3.client("s3")  # what a cloud endpoint handing out URLs would do; the gateway needs no boto3

    def presign(key: str) -> str:
        return signer.generate_presigned_url("put_object", Params={"Bucket": "vigia-media", "Key": key},
                                             ExpiresIn=300)

    transport = RecordingTransport()
    publisher(outbox, transport, S3Uploader("vigia-media", "gw-1", presign=presign), clips).run_once()
    [sent] = transport.candidates()
    key = f"gateways/gw-1/clips/cam-front/{candidate.event_id}.avi"
    assert sent.clip is not None and sent.clip.uri == f"s3://vigia-media/{key}"
    got = aws.s3.get_object(Bucket="vigia-media", Key=key)["Body"].read()
    assert hashlib.sha256(got).hexdigest() == candidate.clip.sha256


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_upload_while_s3_is_down_is_retried_and_nothing_leaves_early(
        aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")  # nothing listens there yet
    clips = tmp_path / "clips"
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    first, second = local_candidate(clips), local_candidate(clips)
    put_candidate(outbox, first)
    put_candidate(outbox, second)
    transport = RecordingTransport()
    pub = publisher(outbox, transport, S3Uploader("vigia-media", "gw-1"), clips)

    for _ in range(2):
        assert pub.run_once() > 0
    assert transport.candidates() == []
    assert outbox.pending_event_ids() == {first.event_id, second.event_id}
    assert [m.attempts for m in outbox.pending()] == [2, 0]

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)  # S3 comes back
    server.start()  # same in-process backend as the session's server: the bucket is there
    try:
        pub.run_once()
    finally:
        server.stop()
    assert [c.event_id for c in transport.candidates()] == [first.event_id, second.event_id]
    assert outbox.count_pending() == 0
    listed = aws.s3.list_objects_v2(Bucket="vigia-media", Prefix="gateways/gw-1/clips/")["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(
        f"gateways/gw-1/clips/cam-front/{c.event_id}.avi" for c in (first, second))
