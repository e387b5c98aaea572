"""`vigia edge run --thing gw2 --clip-transport s3` end to end: real model on real footage, mutual TLS to
Mosquitto, each candidate's segment uploaded to moto server's S3 under the gateway's own prefix before its
message is published, and the cloud's S3 clip source reading back exactly what the gateway recorded."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from cloud.clips.s3 import S3ClipSource
from tests.footage import cut

from .conftest import CandidateConsumer

pytestmark = pytest.mark.integration
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def test_edge_run_uploads_each_clip_to_s3_before_publishing(
        broker, pki, shadow_service, tmp_path: Path, vtest: Path, gateway_model_dir: Path) -> None:
    from moto.server import ThreadedMotoServer

    s3_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3_server.start()
    host, port = s3_server.get_host_and_port()
    env = {**os.environ, **AWS_ENV, "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    env.pop("AWS_PROFILE", None)
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="vigia-media-e2e")

    try:
        with CandidateConsumer(broker, pki, "s3-consumer", "gw2") as consumer:
            gw = pki.ids["gw2"]
            clip = cut(vtest, tmp_path / "plaza.avi", 8)
            data = tmp_path / "gw"
            result = subprocess.run(
                [sys.executable, "-m", "vigia.cli", "edge", "run", "--source", str(clip), "--camera", "plaza",
                 "--thing", "gw2", "--transport", "paho", "--mqtt-host", broker.host, "--mqtt-port", str(broker.port),
                 "--ca", gw.ca_file, "--cert", gw.cert_file, "--key", gw.key_file, "--data-dir", str(data),
                 "--model-dir", str(gateway_model_dir), "--heartbeat-interval", "1",
                 "--clip-transport", "s3", "--clip-bucket", "vigia-media-e2e"],
                capture_output=True, text=True, timeout=300, env=env)
            assert result.returncode == 0, result.stderr[-3000:]
            sent = [c["event_id"] for c in json.loads(result.stdout.splitlines()[-1])["candidates"]]
            assert sent
            got = consumer.wait_for(len(sent))
            assert [c.event_id for c in got] == sent  # in order, each once
            for candidate in got:
                assert candidate.clip is not None and candidate.clip.kind == "s3"
                local = next((data / "clips" / "plaza").glob(f"{candidate.event_id}.*"))
                assert candidate.clip.uri == f"s3://vigia-media-e2e/gateways/gw2/clips/plaza/{local.name}"
            first = got[0]
            assert first.clip is not None
            local = next((data / "clips" / "plaza").glob(f"{first.event_id}.*"))
            fetched = S3ClipSource(s3).fetch(first.clip, tmp_path)  # integrity-checked against the reference
            assert hashlib.sha256(fetched.read_bytes()).hexdigest() == hashlib.sha256(local.read_bytes()).hexdigest()
    finally:
        s3_server.stop()
