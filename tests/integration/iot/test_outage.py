"""Nothing accepted is lost: candidates put into the outbox while the broker is down for ~30 s, and
while the publisher process is SIGKILLed and restarted, all arrive once the broker is back; a consumer
de-duplicating by event id sees each exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contracts import Box, Candidate, ModelRef, TrackStats, new_event_id, topics
from edge_agent.outbox import Outbox
from edge_agent.publisher import put_candidate

from .conftest import CLOUD_ID, transport_settings

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
OUTAGE_S = 30.0


def make_candidate(camera: str = "cam1") -> Candidate:
    frame = np.zeros((48, 64, 3), np.uint8)
    cv2.rectangle(frame, (20, 10), (40, 44), (200, 180, 160), -1)
    ok, jpeg = cv2.imencode(".jpg", frame)
    assert ok
    now = datetime.now(UTC)
    return Candidate(
        event_id=new_event_id(), gateway_id="gw1", camera_id=camera, source="rtsp://cam1", started_at=now,
        ended_at=now, start_offset_s=0, end_offset_s=1.5, frame_width=64, frame_height=48,
        best_frame_offset_s=0.5, snapshot_jpeg=jpeg.tobytes(),
        boxes=[Box(x1=20, y1=10, x2=40, y2=44, score=0.8, track_id=1)],
        tracks=[TrackStats(track_id=1, hits=4, frames_seen=5, first_ts=0, last_ts=1.5, score_track=0.8,
                           score_max=0.85, score_mean=0.75, displacement=0.6, mean_height_px=34)],
        score=0.8, threshold=0.5, model=ModelRef(model_id="ssd", version="1"), reasons=["track score 0.80"],
    )


class Consumer:
    """The cloud side: persistent MQTT 5 session (so the broker queues for it while it is away),
    idempotent on event id."""

    def __init__(self, broker, pki) -> None:
        me = pki.ids[CLOUD_ID]
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="candidate-consumer", protocol=mqtt.MQTTv5)
        self.client.tls_set(ca_certs=me.ca_file, certfile=me.cert_file, keyfile=me.key_file)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topics.candidates_filter("gw1"), qos=1)
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600
        self.client.connect(broker.host, broker.port, clean_start=False, properties=props)
        self.client.loop_start()
        self.deliveries = 0

    def _on_message(self, client, userdata, message) -> None:
        candidate = Candidate.model_validate_json(message.payload)  # real, versioned payloads
        assert candidate.schema_version == 1
        with self.lock:
            self.deliveries += 1
            self.seen[candidate.event_id] = self.seen.get(candidate.event_id, 0) + 1

    def unique(self) -> set[str]:
        with self.lock:
            return set(self.seen)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_publisher(settings_json: str, outbox_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.iot.publisher_proc", settings_json,
                             str(outbox_path)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout.readline().strip() == "publisher running"
    return proc


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_outage_and_sigkill_lose_nothing(broker_factory, pki, tmp_path):
    broker = broker_factory()
    settings = transport_settings(broker, pki.ids["gw1"], "gw1-publisher", reconnect_min_s=0.2,
                                  reconnect_max_s=1.0, publish_timeout_s=3).model_dump_json()
    outbox_path = tmp_path / "outbox.sqlite"
    outbox = Outbox(outbox_path)
    consumer = Consumer(broker, pki)
    proc = start_publisher(settings, outbox_path)
    expected: set[str] = set()

    def put(n: int) -> None:
        for _ in range(n):
            candidate = make_candidate()
            assert put_candidate(outbox, candidate)
            expected.add(candidate.event_id)

    try:
        put(5)
        assert wait_until(lambda: consumer.unique() >= expected, 10), "baseline delivery"

        baseline = set(expected)
        broker.stop()
        outage_started = time.monotonic()
        put(5)
        time.sleep(5)
        proc.send_signal(signal.SIGKILL)  # no chance to flush anything
        proc.wait(5)
        put(5)
        proc = start_publisher(settings, outbox_path)
        put(5)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_started)))
        assert outbox.count_pending() == 15
        assert consumer.unique() == baseline  # nothing could get through while the broker was down
        broker.start()

        assert wait_until(lambda: consumer.unique() >= expected, 20), (
            f"missing {len(expected - consumer.unique())} of {len(expected)}")
        assert wait_until(lambda: outbox.count_pending() == 0, 5)

        # SIGKILL once more while it drains a fresh batch: at-least-once, then de-duplicated
        put(20)
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        proc = start_publisher(settings, outbox_path)
        assert wait_until(lambda: consumer.unique() >= expected, 15)
        assert consumer.unique() == expected
        print(json.dumps({"unique": len(expected), "deliveries": consumer.deliveries}))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        consumer.close()
        outbox.close()
