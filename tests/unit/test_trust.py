"""The cloud believes the connection, not the body: identity, clip confinement, site from the registry, and
which failures are dead-lettered at once. Embedded adapters (folder + SQLite + JSONL), stand-in verifier."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cloud.pipeline import Pipeline
from cloud.ports import ClipNotFound, MalformedMessage, ThingRegistry
from cloud.runtime.inprocess import InProcessCloud
from cloud.runtime.wiring import build_pipeline
from cloud.settings import CloudSettings
from cloud.storage.keys import snapshot_key
from cloud.trust import (
    ClipOutsideGateway,
    FileThingRegistry,
    Identity,
    IotThingRegistry,
    confine_clip,
    envelope_body,
    identity_from_topic,
)
from contracts import ClipRef, topics
from tests.unit.cloud_factories import decide_by_candidate_score, make_candidate, write_avi


@pytest.fixture
def settings(tmp_path: Path) -> CloudSettings:
    write_avi(tmp_path / "incoming" / "cam-front" / "ev.avi")
    write_avi(tmp_path / "incoming" / "cam-back" / "ev.avi")
    return CloudSettings(store="local", data_dir=tmp_path / "data", clip_root=tmp_path / "incoming")


@pytest.fixture
def pipeline(settings: CloudSettings) -> Pipeline:
    return build_pipeline(settings, decide_by_candidate_score)


class DictRegistry:
    """A registry held in memory (what things.json or IoT attributes say, without the file or the service)."""

    def __init__(self, sites: dict[str, str]) -> None:
        self.sites = sites

    def site_of(self, thing: str) -> str | None:
        return self.sites.get(thing)


def aws_mode(pipeline: Pipeline, registry: ThingRegistry, bucket: str = "vigia-media") -> Pipeline:
    """The pipeline as wired for store=aws, on the embedded stores: identity required, one media bucket."""
    pipeline.require_identity, pipeline.registry, pipeline.media_bucket = True, registry, bucket
    return pipeline


def dead_letters(settings: CloudSettings) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((settings.data_dir / "dead-letter").glob("*.json"))]


def notifications(settings: CloudSettings) -> list[dict]:
    path = settings.data_dir / "notifications.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def only_letter_reason(settings: CloudSettings) -> str:
    [letter] = dead_letters(settings)
    return letter["reason"]


def test_envelope_gives_the_identity_and_the_registry_the_site(pipeline, settings: CloudSettings) -> None:
    aws_mode(pipeline, DictRegistry({"gw-1": "site-A"}))
    candidate = make_candidate(score=0.9, site_id="site-B")  # the body claims another customer's site
    outcome = pipeline.handle(envelope_body(candidate, Identity("gw-1")))
    assert outcome.status == "processed" and outcome.verdict.decision == "confirmed"
    assert pipeline.events.get(candidate.event_id).site_id == "site-A"
    [note] = notifications(settings)
    assert note["attributes"]["site_id"] == "site-A"


def test_bare_candidate_is_refused_in_aws_mode(pipeline, settings: CloudSettings) -> None:
    aws_mode(pipeline, DictRegistry({"gw-1": "site-A"}))
    outcome = pipeline.handle(make_candidate(score=0.9).model_dump_json())
    assert outcome.status == "dead_lettered"
    [letter] = dead_letters(settings)
    assert letter["reason"] == "no_connection_identity" and "no connection identity" in letter["error"]
    assert notifications(settings) == []


def test_body_claiming_another_gateway_is_refused(pipeline, settings: CloudSettings) -> None:
    aws_mode(pipeline, DictRegistry({"gw-1": "site-A", "gw-2": "site-B"}))
    spoof = make_candidate(score=0.9)  # gateway_id "gw-1", published by gw-2
    assert pipeline.handle(envelope_body(spoof, Identity("gw-2"))).status == "dead_lettered"
    assert only_letter_reason(settings) == "identity_mismatch"
    assert pipeline.events.get(spoof.event_id) is None and notifications(settings) == []


def test_unregistered_thing_is_refused_in_aws_mode(pipeline, settings: CloudSettings) -> None:
    aws_mode(pipeline, DictRegistry({}))
    assert pipeline.handle(envelope_body(make_candidate(), Identity("gw-1"))).status == "dead_lettered"
    [letter] = dead_letters(settings)
    assert letter["reason"] == "thing_not_registered" and "not registered" in letter["error"]


def test_malformed_envelope_is_refused(pipeline, settings: CloudSettings) -> None:
    aws_mode(pipeline, DictRegistry({"gw-1": "site-A"}))
    body = json.dumps({"candidate": json.loads(make_candidate().model_dump_json()), "thing_name": "gw/1"})
    assert pipeline.handle(body).status == "dead_lettered"
    assert only_letter_reason(settings) == "malformed"


@pytest.mark.parametrize("uri", [
    "s3://vigia-media/gateways/gw-2/clips/cam-front/ev.avi",  # another gateway's clip
    "s3://vigia-media/clips/cam-front/2026/11/28/ev.avi",  # the cloud's own media
    "s3://other-bucket/gateways/gw-1/clips/cam-front/ev.avi",  # another bucket
    "s3://vigia-media/gateways/gw-1/../gw-2/clips/ev.avi",  # a path trick inside the prefix
])
def test_s3_clip_outside_the_gateways_prefix_is_refused(pipeline, settings: CloudSettings, uri: str) -> None:
    aws_mode(pipeline, DictRegistry({"gw-1": "site-A"}))
    candidate = make_candidate(score=0.9, clip=ClipRef(kind="s3", uri=uri))
    assert pipeline.handle(envelope_body(candidate, Identity("gw-1"))).status == "dead_lettered"
    assert only_letter_reason(settings) == "clip_outside_gateway"


def test_clip_in_the_gateways_own_prefix_is_fetched(pipeline, settings: CloudSettings) -> None:
    """Inside the prefix the reference passes the trust check and reaches the clip source (not there yet:
    retried, not dead-lettered)."""
    aws_mode(pipeline, DictRegistry({"gw-1": "site-A"}))
    ref = ClipRef(kind="s3", uri="s3://vigia-media/gateways/gw-1/clips/cam-front/ev.avi")
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="vigia-media")
        with pytest.raises(ClipNotFound):
            pipeline.handle(envelope_body(make_candidate(clip=ref), Identity("gw-1")))
    assert dead_letters(settings) == []


def test_kvs_stream_must_be_the_gateways_own_for_that_camera() -> None:
    own = ClipRef(kind="kvs", uri="kvs://vigia-gw1-cam-front", start_ts=1.0, end_ts=2.0)
    confine_clip(own, "gw1", "cam-front", "vigia-media")  # passes
    for uri in ("kvs://vigia-gw2-cam-front", "kvs://vigia-gw1-cam-back", "kvs://vigia-gw1-x-cam-front"):
        with pytest.raises(ClipOutsideGateway):
            confine_clip(ClipRef(kind="kvs", uri=uri), "gw1", "cam-front", "vigia-media")
    # thing "gw1-x" cannot reach thing "gw1"'s streams either
    with pytest.raises(ClipOutsideGateway):
        confine_clip(ClipRef(kind="kvs", uri="kvs://vigia-gw1-x-cam"), "gw1-x", "cam-front", None)


def test_local_clip_outside_the_cameras_folder_is_refused(pipeline, settings: CloudSettings) -> None:
    candidate = make_candidate(score=0.9, clip=ClipRef(kind="local", uri="cam-back/ev.avi"))  # cam-front's event
    assert pipeline.handle(candidate.model_dump_json()).status == "dead_lettered"
    assert only_letter_reason(settings) == "clip_outside_gateway"


def test_local_clip_in_aws_mode_is_refused_at_once(pipeline, settings: CloudSettings) -> None:
    """The cloud cannot read the gateway's disk: retrying would only delay the dead letter."""
    aws_mode(pipeline, DictRegistry({"gw-1": "site-A"}))
    candidate = make_candidate(score=0.9, clip=ClipRef(kind="local", uri="cam-front/ev.avi"))
    assert pipeline.handle(envelope_body(candidate, Identity("gw-1"))).status == "dead_lettered"
    [letter] = dead_letters(settings)
    assert letter["reason"] == "clip_rejected" and "must upload" in letter["error"]


def test_empty_snapshot_without_clip_is_dead_lettered_at_once(pipeline, settings: CloudSettings) -> None:
    candidate = make_candidate(score=0.9).model_copy(update={"snapshot_jpeg": b""})
    outcome = pipeline.handle(candidate.model_dump_json())
    assert outcome.status == "dead_lettered"
    assert only_letter_reason(settings) == "nothing_to_verify"


def test_camera_id_storage_refuses_is_refused_by_the_contract_at_once(pipeline, settings: CloudSettings) -> None:
    data = json.loads(make_candidate().model_dump_json())
    data["camera_id"] = "cam..1"
    assert pipeline.handle(json.dumps(data)).status == "dead_lettered"  # not raised for a retry
    [letter] = dead_letters(settings)
    assert letter["reason"] == "malformed" and "camera id 'cam..1'" in letter["error"]


@pytest.mark.parametrize("camera_id", ["a", "cam-front", "A.b_c-9", "x" * 64, "1.2.3"])
def test_every_camera_id_the_contract_accepts_storage_keys_accept(camera_id: str) -> None:
    candidate = make_candidate(camera_id=camera_id)
    assert snapshot_key(candidate.camera_id, candidate.event_id, candidate.started_at).startswith(
        f"clips/{camera_id}/")


def test_mqtt_topic_is_the_identity_on_the_embedded_default(settings: CloudSettings) -> None:
    cloud = InProcessCloud(settings, decide_by_candidate_score, retry_delay_s=0.0)
    good = make_candidate(score=0.9)
    assert cloud.submit_mqtt(topics.candidates("gw-1", "cam-front"), good.model_dump_json()).status == "processed"
    other_camera = make_candidate(score=0.9)
    outcome = cloud.submit_mqtt(topics.candidates("gw-1", "cam-back"), other_camera.model_dump_json())
    assert outcome.status == "dead_lettered"
    other_thing = make_candidate(score=0.9)
    assert cloud.submit_mqtt(topics.candidates("gw-9", "cam-front"), other_thing.model_dump_json()).status \
        == "dead_lettered"
    assert [letter["reason"] for letter in dead_letters(settings)] == ["identity_mismatch"] * 2
    assert [n["message"]["event_id"] for n in notifications(settings)] == [good.event_id]


def test_identity_from_topic() -> None:
    assert identity_from_topic("vigia/gw1/cameras/door/candidates") == Identity("gw1", "door")
    for bad in ("vigia/gw1/telemetry", "vigia/+/cameras/door/candidates", "other/gw1/cameras/door/candidates"):
        with pytest.raises(MalformedMessage, match="not a candidates topic"):
            identity_from_topic(bad)


def test_things_file_gives_the_site_and_refuses_what_it_does_not_list(pipeline, settings: CloudSettings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "things.json").write_text(json.dumps({"gw-1": {"site_id": "site-9"}}))
    mine = make_candidate(score=0.9, site_id="site-1")
    assert pipeline.handle(mine.model_dump_json()).status == "processed"
    assert pipeline.events.get(mine.event_id).site_id == "site-9"
    stranger = make_candidate().model_copy(update={"gateway_id": "gw-7"})
    assert pipeline.handle(stranger.model_dump_json()).status == "dead_lettered"
    assert only_letter_reason(settings) == "thing_not_registered"


def test_without_things_file_the_embedded_gateway_keeps_its_own_site(pipeline, settings: CloudSettings) -> None:
    candidate = make_candidate(score=0.9, site_id="site-1")
    assert pipeline.handle(candidate.model_dump_json()).status == "processed"
    assert pipeline.events.get(candidate.event_id).site_id == "site-1"


def test_broken_things_file_keeps_the_last_good_table(tmp_path: Path) -> None:
    path = tmp_path / "things.json"
    path.write_text(json.dumps({"gw-1": "site-A"}))
    registry = FileThingRegistry(path)
    assert registry.site_of("gw-1") == "site-A"
    path.write_text("{half written")
    assert registry.site_of("gw-1") == "site-A"


class CountingIot:
    """The moto IoT client, counting describe_thing calls (to see the cache)."""

    def __init__(self, client) -> None:
        self.client, self.calls = client, 0

    def describe_thing(self, **kwargs):
        self.calls += 1
        return self.client.describe_thing(**kwargs)


def test_iot_registry_reads_thing_attributes_and_caches_them() -> None:
    now = [0.0]
    with mock_aws():
        iot = boto3.client("iot", region_name="us-east-1")
        iot.create_thing(thingName="gw1", attributePayload={"attributes": {"site_id": "site-A"}})
        iot.create_thing(thingName="bare")
        counting = CountingIot(iot)
        registry = IotThingRegistry(counting, ttl_s=60.0, clock=lambda: now[0])
        assert registry.site_of("gw1") == "site-A"
        assert registry.site_of("bare") is None  # registered without a site: no customer to alert
        assert registry.site_of("nobody") is None
        assert registry.site_of("gw1") == "site-A" and counting.calls == 3  # cached
        iot.update_thing(thingName="gw1", attributePayload={"attributes": {"site_id": "site-B"}})
        now[0] = 61.0
        assert registry.site_of("gw1") == "site-B" and counting.calls == 4  # re-read after the TTL


def test_registry_throttling_is_retried_not_dead_lettered(pipeline, settings: CloudSettings) -> None:
    """moto cannot throttle: botocore's own Stubber answers describe_thing with ThrottlingException."""
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber

    iot = boto3.client("iot", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(iot) as stub:
        stub.add_client_error("describe_thing", service_error_code="ThrottlingException", http_status_code=429)
        aws_mode(pipeline, IotThingRegistry(iot))
        with pytest.raises(ClientError, match="ThrottlingException"):
            pipeline.handle(envelope_body(make_candidate(), Identity("gw-1")))
    assert dead_letters(settings) == []
