"""Building the feedback path from the same settings the cloud runtime uses (cloud.settings.CloudSettings).

Embedded default (`store=local`): events in `data_dir/events.sqlite3`, media and memory artifacts under
`data_dir/objects`, the verifier's memories in `data_dir/fp_memory`, shadows in `data_dir/shadows.json`.
AWS (`store=aws`): DynamoDB, S3, and the shadow through `iot-data`. `VIGIA_CONFIG_BACKEND=mqtt` sends the
shadow update to the local shadow service instead (broker from VIGIA_MQTT_HOST / _PORT / _CA / _CERT / _KEY),
`=local` to the file, whatever the store.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cloud.config_admin import ShadowBackend
from cloud.events.record import EventRecord
from cloud.feedback.learning import FpMemoryLearner
from cloud.feedback.recording import record_feedback
from cloud.feedback.shadow_refs import SHADOWS_FILE, LocalShadowBackend, ShadowRefPublisher
from cloud.ports import EventStore, ObjectStore
from cloud.settings import CloudSettings


@dataclass
class FeedbackService:
    settings: CloudSettings
    events: EventStore
    objects: ObjectStore
    learner: FpMemoryLearner

    def record(self, event_id: str, label: str, *, by: str, note: str | None = None,
               source: str = "cli") -> EventRecord:
        return record_feedback(self.events, event_id, label, by=by, note=note, source=source,
                               on_not_person=self.learner.learn)


def settings_for_data_dir(data_dir: Path | None) -> CloudSettings:
    """Settings from the environment; `data_dir` (a cloud data dir, or a demo's, whose cloud lives in
    `cloud/`) overrides VIGIA_DATA_DIR."""
    if data_dir is None:
        return CloudSettings()
    data_dir = Path(data_dir).expanduser()
    if (data_dir / "cloud" / "events.sqlite3").exists() or (data_dir / "vigia-data-dir.json").exists():
        data_dir = data_dir / "cloud"
    return CloudSettings(data_dir=data_dir)


def require_store(settings: CloudSettings) -> None:
    """A read of the embedded store must not create one: say where it was looked for instead."""
    path = settings.data_dir / "events.sqlite3"
    if settings.store == "local" and not path.exists():
        raise ValueError(f"no event store at {path}: give --data-dir (a demo's or a cloud data dir) or set "
                         "VIGIA_DATA_DIR, or VIGIA_STORE=aws for DynamoDB")


def shadow_backend_factory(settings: CloudSettings) -> Callable[[], ShadowBackend]:
    kind = os.environ.get("VIGIA_CONFIG_BACKEND") or ("iot" if settings.store == "aws" else "local")
    if kind == "local":
        path = settings.data_dir / SHADOWS_FILE
        return lambda: LocalShadowBackend(path)
    if kind == "mqtt":
        from cloud.config_admin import MqttShadowBackend
        from cloud.shadow_service import BrokerSettings

        env = os.environ
        broker = BrokerSettings(host=env.get("VIGIA_MQTT_HOST", "127.0.0.1"),
                                port=int(env.get("VIGIA_MQTT_PORT", "8883" if env.get("VIGIA_MQTT_CA") else "1883")),
                                client_id=env.get("VIGIA_MQTT_CLIENT_ID", "vigia-feedback"),
                                ca_file=env.get("VIGIA_MQTT_CA"), cert_file=env.get("VIGIA_MQTT_CERT"),
                                key_file=env.get("VIGIA_MQTT_KEY"))
        return lambda: MqttShadowBackend(broker)
    if kind == "iot":
        from cloud.config_admin import IotDataBackend

        return IotDataBackend
    raise ValueError(f"VIGIA_CONFIG_BACKEND {kind!r} is not one of iot, mqtt, local")


def build_feedback(settings: CloudSettings, shadow: Callable[[], ShadowBackend] | None = None) -> FeedbackService:
    if settings.store == "aws":
        from cloud.events.dynamodb import DynamoEventStore
        from cloud.storage.s3 import S3ObjectStore

        assert settings.bucket and settings.table  # validated by CloudSettings
        events: EventStore = DynamoEventStore(settings.table)
        objects: ObjectStore = S3ObjectStore(settings.bucket)
    else:
        from cloud.events.sqlite import SqliteEventStore
        from cloud.storage.local import FolderObjectStore

        events = SqliteEventStore(settings.data_dir / "events.sqlite3")
        objects = FolderObjectStore(settings.data_dir / "objects")
    publisher = ShadowRefPublisher(shadow or shadow_backend_factory(settings))
    learner = FpMemoryLearner(objects, publisher, memory_dir=settings.memory_dir)
    return FeedbackService(settings, events, objects, learner)
