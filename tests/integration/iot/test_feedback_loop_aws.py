"""The learning loop in AWS mode (issue 9, second "Done means"): events in DynamoDB and media in S3 on moto
server (real HTTP), the shadow over the real Mosquitto (mutual TLS, ACLs) and the local shadow service, and a
running agent (PahoTransport as gw1, ShadowSync, ConfigStore, FpMemorySync).

feedback → memory artifact in S3 → `fp_memory` in gw1's desired config → the agent fetches the s3:// artifact,
checks its sha256 and installs it → the gateway suppresses the same detection; a person elsewhere passes."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import cv2
import pytest

from cloud.config_admin import MqttShadowBackend
from cloud.events.dynamodb import create_table
from cloud.feedback import UnknownEvent
from cloud.feedback.learning import artifact_key, current_key
from cloud.feedback.wiring import build_feedback
from cloud.runtime.inprocess import InProcessCloud
from cloud.settings import CloudSettings
from contracts import Box, CameraConfig, new_event_id
from edge_agent.config_store import ConfigStore
from edge_agent.fp_memory_sync import FpMemorySync
from edge_agent.shadow_sync import ShadowSync
from edge_agent.transport import make_transport
from models.fp_memory import FpMemory, FpMemoryStore
from tests.integration.learning_loop import CROP_ROWS, POSTER_AT, POSTER_SIZE, poster
from tests.unit.cloud_factories import decide_by_candidate_score, make_candidate
from tests.waiting import wait_for
from vigia.cli import main

from .conftest import cloud_settings, transport_settings

STILL_THRESHOLD = CameraConfig().still_threshold  # the bar the agent's stills use below

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


@pytest.fixture
def aws(monkeypatch, tmp_path: Path) -> CloudSettings:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto's backends live in the process: another test's moto server may have left a table behind
    urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST")).read()
    for key, value in {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3").create_bucket(Bucket="vigia-media")
    create_table(boto3.client("dynamodb"), "vigia-events")
    # the cloud takes the site from the registry of things (cloud/trust.py), never from the candidate
    boto3.client("iot").create_thing(thingName="gw1", attributePayload={"attributes": {"site_id": "site-1"}})
    topic = boto3.client("sns").create_topic(Name="alerts")["TopicArn"]
    dlq = boto3.client("sqs").create_queue(QueueName="dlq")["QueueUrl"]
    settings = CloudSettings(store="aws", bucket="vigia-media", table="vigia-events", topic_arn=topic, dlq_url=dlq,
                             data_dir=tmp_path / "cloud")
    for key, value in {"VIGIA_STORE": "aws", "VIGIA_BUCKET": "vigia-media", "VIGIA_TABLE": "vigia-events",
                       "VIGIA_TOPIC_ARN": topic, "VIGIA_DLQ_URL": dlq}.items():
        monkeypatch.setenv(key, value)
    yield settings
    server.stop()


def poster_scene(vtest: Path, picture, detector) -> tuple:
    """One frame of the plaza's south edge with the poster, and the boxes the gateway's model puts on it at the
    still threshold (what its candidate carries)."""
    cap = cv2.VideoCapture(str(vtest))
    _, frame = cap.read()
    cap.release()
    frame = frame[CROP_ROWS[0]:CROP_ROWS[1]].copy()
    (x, y), (w, h) = POSTER_AT, POSTER_SIZE
    frame[y:y + h, x:x + w] = poster(picture)
    boxes = [d.as_xyxy() for d in detector.detect(frame) if d.x1 >= x - 20 and d.score >= STILL_THRESHOLD]
    assert boxes, "the gateway model sees no person on the poster"
    return frame, boxes


def send(cloud: InProcessCloud, frame, boxes, *, score: float, minutes: int = 0, camera: str = "plaza") -> str:
    _, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
    candidate = make_candidate(score=score, camera_id=camera, started_at=T0 + timedelta(minutes=minutes))
    candidate = candidate.model_copy(update={
        "gateway_id": "gw1", "snapshot_jpeg": jpeg.tobytes(), "frame_width": frame.shape[1],
        "frame_height": frame.shape[0],
        "boxes": [Box(x1=b[0], y1=b[1], x2=b[2], y2=b[3], score=score) for b in boxes]})
    assert cloud.submit(candidate) is not None
    return candidate.event_id


def test_feedback_reaches_a_running_agent_through_s3_and_the_shadow(
        aws, broker, pki, shadow_service, tmp_path: Path, vtest: Path, pictures, gateway_detector, capsys) -> None:
    from edge_agent.agent import EdgeAgent
    from edge_agent.config_provider import StaticConfig
    from edge_agent.settings import AgentSettings

    frame, boxes = poster_scene(vtest, pictures["camera"], gateway_detector)
    cloud = InProcessCloud(aws, decide_by_candidate_score)
    poster_event = send(cloud, frame, boxes, score=0.9)  # confirmed: the customer was alerted
    walker_event = send(cloud, frame, boxes, score=0.5, minutes=1)  # uncertain

    # the running agent: gw1 over mutual TLS, its config from the named shadow
    transport = make_transport(transport_settings(broker, pki.ids["gw1"], "gw1-fp-agent"))
    transport.connect(timeout=5)
    store = ConfigStore(tmp_path / "edge" / "config.json")
    shadow = ShadowSync(transport, "gw1", store)
    shadow.start()
    memories = FpMemoryStore(tmp_path / "edge" / "fp_memory")
    fp_sync = FpMemorySync(store, memories, retry_s=0.2).start()
    try:
        assert shadow.synced.wait(5)
        service = build_feedback(aws, shadow=lambda: MqttShadowBackend(cloud_settings(broker, pki, "feedback")))
        record = service.record(poster_event, "not-person", by="customer-app", note="poster", source="api")
        assert (record.label, record.decision) == ("not-person", "confirmed")

        # the artifact in S3, named by version and sha256 in gw1's desired config
        s3 = boto3.client("s3")
        pointer = json.loads(s3.get_object(Bucket="vigia-media", Key=current_key("plaza"))["Body"].read())
        assert pointer["uri"] == f"s3://vigia-media/{artifact_key('plaza', pointer['version'])}"
        body = s3.get_object(Bucket="vigia-media", Key=artifact_key("plaza", pointer["version"]))["Body"].read()
        assert FpMemory.from_document(json.loads(body)).content_sha256() == pointer["sha256"]
        # the verifier (AWS mode, no memory folder) reads the same version from the bucket, at once
        from cloud.feedback.published import PublishedFpMemories
        from cloud.storage.s3 import S3ObjectStore

        verifier_view = PublishedFpMemories(S3ObjectStore("vigia-media")).get("plaza")
        assert verifier_view.content_sha256() == pointer["sha256"]

        # the agent installed exactly that version
        assert wait_for(lambda: memories.get("plaza").version == pointer["version"])
        assert store.for_camera("plaza").fp_memory.sha256 == pointer["sha256"]
        assert memories.get("plaza").content_sha256() == pointer["sha256"]

        # and the gateway now suppresses the poster, while a real person (astronaut) elsewhere still passes
        agent = EdgeAgent(AgentSettings(gateway_id="gw1", data_dir=tmp_path / "edge"), StaticConfig(),
                          gateway_detector)
        agent.fp_memories = memories
        report = agent.process_image(frame, "plaza", name="poster")
        assert (report.fp_suppressed, len(report.candidates)) == (len(boxes), 0)
        moved = frame.copy()
        (x, y), (w, h) = POSTER_AT, POSTER_SIZE
        moved[y:y + h, x:x + w] = moved[y:y + h, 0:w]  # the poster taken down ...
        moved[y:y + h, 40:40 + w] = cv2.resize(pictures["camera"], (w, h))  # ... a person at another place
        other = agent.process_image(moved, "plaza", name="person")
        assert (other.fp_suppressed, len(other.candidates)) == (0, 1)

        # a person label on a non-confirmed event is a labelled positive, found by label (label-time index)
        service.record(walker_event, "person", by="reviewer")
        assert [r.event_id for r in service.events.query(label="person")] == [walker_event]
        assert [r.event_id for r in service.events.query(camera_id="plaza", label="not-person")] == [poster_event]
        assert [r.event_id for r in service.events.query(since=T0 - timedelta(days=1))] == [
            walker_event, poster_event]
        with pytest.raises(UnknownEvent):
            service.record(new_event_id(), "person", by="reviewer")

        # the CLI picks DynamoDB from the same settings as the runtime (VIGIA_STORE=aws)
        capsys.readouterr()
        assert main(["events", "list", "--verdict", "confirmed", "--json"]) == 0
        (row,) = json.loads(capsys.readouterr().out)
        assert (row["event_id"], row["label"]) == (poster_event, "not-person")
        assert main(["feedback", poster_event, "maybe"]) == 2
        assert "is not one of person, not-person, unsure" in capsys.readouterr().err
    finally:
        fp_sync.stop()
        shadow.stop()
        transport.disconnect()
        # the shadow service lives for the session: leave gw1's desired state as the other tests expect it
        with MqttShadowBackend(cloud_settings(broker, pki, "feedback-cleanup")) as backend:
            backend.update("gw1", "vigia-config", {"state": {"desired": {"cameras": {"plaza": None}},
                                                             "reported": {"cameras": {"plaza": None}}}})
