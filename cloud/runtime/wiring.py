"""Build a Pipeline from settings: the adapters are chosen by configuration, never by "is this a test"."""

from __future__ import annotations

import importlib
import inspect

from cloud import metrics
from cloud.clips.kvs import KvsClipSource
from cloud.clips.local import LocalClipSource
from cloud.clips.router import ClipRouter
from cloud.clips.s3 import S3ClipSource
from cloud.deadletter import FolderDeadLetter, SqsDeadLetter
from cloud.events.sqlite import SqliteEventStore
from cloud.notify.jsonl import JsonlNotifier
from cloud.pipeline import Pipeline
from cloud.ports import VerifyFn
from cloud.settings import CloudSettings
from cloud.storage.local import FolderObjectStore
from cloud.trust import FileThingRegistry, IotThingRegistry


def load_verify(spec: str, settings: CloudSettings | None = None) -> VerifyFn:
    """`module:factory` → factory(settings) (or factory()) → the verify callable (models load once, at cold
    start)."""
    module_name, _, attr = spec.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    if settings is not None and inspect.signature(factory).parameters:
        return factory(settings)
    return factory()


def build_pipeline(settings: CloudSettings, verify: VerifyFn | None = None) -> Pipeline:
    metrics.configure_from_settings(settings)  # EMF to stdout (AWS) or <data dir>/metrics/cloud.jsonl
    verify = verify or load_verify(settings.verifier, settings)
    # Every clip kind is always available: a local deployment may still be sent s3:// clips.
    clips = ClipRouter({"local": LocalClipSource(settings.local_clip_root), "s3": S3ClipSource(),
                       "kvs": KvsClipSource()})
    if settings.store == "aws":
        from cloud.events.dynamodb import DynamoEventStore
        from cloud.notify.sns import SnsNotifier
        from cloud.storage.s3 import S3ObjectStore

        assert settings.bucket and settings.table and settings.topic_arn and settings.dlq_url  # validated
        objects, events = S3ObjectStore(settings.bucket), DynamoEventStore(settings.table)
        notifier, dead = SnsNotifier(settings.topic_arn), SqsDeadLetter(settings.dlq_url)
    else:
        data = settings.data_dir
        objects, events = FolderObjectStore(data / "objects"), SqliteEventStore(data / "events.sqlite3")
        notifier, dead = JsonlNotifier(data / "notifications.jsonl"), FolderDeadLetter(data / "dead-letter")
    return Pipeline(
        clips=clips, objects=objects, events=events, notifier=notifier, dead_letter=dead, verify=verify,
        ttl_days=settings.event_ttl_days, notify_lease_s=settings.notify_lease_s,
        processing_lease_s=settings.processing_lease_s,
        # Trust (DESIGN.md): in AWS mode only the IoT rule's envelope and the thing registry say who sent it.
        registry=(IotThingRegistry() if settings.store == "aws"
                  else FileThingRegistry(settings.data_dir / "things.json")),
        require_identity=settings.store == "aws", media_bucket=settings.bucket,
    )
