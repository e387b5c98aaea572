"""The review API in AWS mode against moto server over HTTP: DynamoDB events, S3 media read by byte range,
feedback written to the item, and a bearer token that is required."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cloud_moto import Aws

from cloud.api import ConsoleRefused, ConsoleServer, build_console
from cloud.runtime.wiring import build_pipeline
from contracts import ClipRef
from tests.unit.cloud_factories import decide_by_candidate_score, make_candidate, write_avi

pytestmark = pytest.mark.integration

TOKEN = "console-token-for-moto-0123456789"
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture
def filled(aws: Aws, tmp_path: Path) -> dict:
    clip = write_avi(tmp_path / "clip.avi", frames=6)
    aws.s3.put_object(Bucket="vigia-media", Key="gateways/gw-1/clips/cam-front/clip.avi", Body=clip.read_bytes())
    ref = ClipRef(kind="s3", uri="s3://vigia-media/gateways/gw-1/clips/cam-front/clip.avi")
    pipeline = build_pipeline(aws.settings, decide_by_candidate_score)
    confirmed = make_candidate(score=0.9, clip=ref, started_at=T0)
    uncertain = make_candidate(score=0.5, camera_id="cam-back", started_at=T0 + timedelta(minutes=1))
    for candidate in (confirmed, uncertain):
        pipeline.process(aws.envelope(candidate))
    return {"confirmed": confirmed, "uncertain": uncertain, "clip": clip.read_bytes()}


@pytest.fixture
def console(aws: Aws, filled: dict, tmp_path: Path) -> Iterator[ConsoleServer]:
    server = build_console(aws.settings, cache_dir=tmp_path / "cache", port=0, token=TOKEN)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def call(server: ConsoleServer, method: str, path: str, body: object = None,
         headers: dict | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    hdrs = {"Authorization": f"Bearer {TOKEN}", **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    conn.close()
    return out


def test_aws_mode_needs_a_token(aws: Aws, tmp_path: Path) -> None:
    with pytest.raises(ConsoleRefused, match="VIGIA_STORE=aws: set VIGIA_API_TOKEN"):
        build_console(aws.settings, cache_dir=tmp_path, port=0)


def test_events_media_and_feedback_from_dynamodb_and_s3(console: ConsoleServer, filled: dict, aws: Aws) -> None:
    confirmed, uncertain = filled["confirmed"], filled["uncertain"]
    status, _, body = call(console, "GET", "/api/events", headers={"Authorization": "Bearer wrong"})
    assert status == 401 and json.loads(body)["error"].startswith("a valid bearer token is required")

    status, _, body = call(console, "GET", "/api/events")
    assert status == 200
    assert [e["event_id"] for e in json.loads(body)["events"]] == [uncertain.event_id, confirmed.event_id]
    status, _, body = call(console, "GET", "/api/events?verdict=confirmed&camera=cam-front")
    assert [e["event_id"] for e in json.loads(body)["events"]] == [confirmed.event_id]

    status, _, body = call(console, "GET", f"/api/events/{confirmed.event_id}")
    event = json.loads(body)
    assert status == 200 and event["gateway"]["boxes"] == [b.model_dump() for b in confirmed.boxes]
    assert event["verdict"]["frame_size_from"] == "assumed: the gateway's frame"  # no local clip to read

    status, headers, body = call(console, "GET", f"/api/events/{confirmed.event_id}/snapshot")
    assert status == 200 and headers["content-type"] == "image/jpeg" and body == confirmed.snapshot_jpeg
    whole = filled["clip"]
    status, headers, body = call(console, "GET", f"/api/events/{confirmed.event_id}/clip",
                                 headers={"Range": "bytes=100-199"})
    assert status == 206 and body == whole[100:200] and headers["content-range"] == f"bytes 100-199/{len(whole)}"
    status, headers, body = call(console, "GET", f"/api/events/{confirmed.event_id}/clip.mp4")
    assert status == 200 and headers["content-type"] == "video/mp4" and body[4:8] == b"ftyp"

    status, _, body = call(console, "POST", f"/api/events/{uncertain.event_id}/feedback",
                           body={"label": "person", "by": "app-user-7"})
    assert status == 200 and json.loads(body)["label"] == "person"
    item = aws.dynamodb.get_item(TableName="vigia-events", Key={"event_id": {"S": uncertain.event_id}})["Item"]
    assert item["label"]["S"] == "person"
    [entry] = json.loads(item["feedback_json"]["S"])
    assert (entry["label"], entry["by"], entry["source"]) == ("person", "app-user-7", "api")
    status, _, body = call(console, "GET", "/api/events?label=person")
    assert [e["event_id"] for e in json.loads(body)["events"]] == [uncertain.event_id]
