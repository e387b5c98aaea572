"""The publisher uploads a candidate's local clip before publishing it, through real Outbox files.

The uploader here is a real port implementation writing into a folder (a bucket stand-in) that can be told
to fail; the broker is a recording transport (the Mosquitto path is tests/integration/iot/test_outage.py).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

import pytest

from contracts import Candidate, ClipRef, topics
from edge_agent.clip_upload import LocalClips, UploadRefused, UploadRetryable, local_clip_path
from edge_agent.clip_upload.s3 import S3Uploader, clip_key
from edge_agent.outbox import Outbox
from edge_agent.publisher import OutboxPublisher, put_candidate
from edge_agent.segments import sha256_file
from edge_agent.transport.base import NotConnectedError
from tests.unit.cloud_factories import make_candidate, write_avi


class RecordingTransport:
    """Acknowledges every publish (or fails the next `fail_next` candidates) and records what it got, in order."""

    def __init__(self) -> None:
        self.is_connected = True
        self.published: list[tuple[str, bytes]] = []
        self.fail_next = 0

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 10.0) -> None:
        if self.fail_next and "/candidates" in topic:
            self.fail_next -= 1
            raise NotConnectedError("connection lost before PUBACK")
        self.published.append((topic, payload))

    def candidates(self) -> list[Candidate]:
        return [Candidate.model_validate_json(p) for t, p in self.published if "/candidates" in t]


class FolderUploader:
    """Copies the clip into `bucket/` under an event-derived key; `retryable`/`refuse` script failures."""

    kind = "s3"

    def __init__(self, bucket: Path, retryable: int = 0, refuse: set[str] | None = None) -> None:
        self.bucket, self.retryable, self.refuse = bucket, retryable, refuse or set()
        self.uploads: list[str] = []

    def upload(self, candidate: Candidate, clips_root: Path) -> ClipRef:
        if candidate.event_id in self.refuse:
            raise UploadRefused("AccessDenied")
        if self.retryable:
            self.retryable -= 1
            raise UploadRetryable("endpoint unreachable")
        path = local_clip_path(candidate, clips_root)
        key = clip_key("gw-1", candidate.camera_id, candidate.event_id, path.suffix)
        (self.bucket / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, self.bucket / key)
        self.uploads.append(candidate.event_id)
        assert candidate.clip is not None
        return candidate.clip.model_copy(update={"kind": "s3", "uri": f"s3://media/{key}"})


def local_candidate(clips: Path, camera: str = "cam-front") -> Candidate:
    probe = make_candidate(camera_id=camera)
    path = write_avi(clips / camera / f"{probe.event_id}.avi")
    ref = ClipRef(kind="local", uri=path.relative_to(clips).as_posix(), sha256=sha256_file(path),
                  size_bytes=path.stat().st_size)
    return probe.model_copy(update={"clip": ref})


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    return tmp_path / "clips"


def publisher(outbox: Outbox, transport: RecordingTransport, uploader, clips: Path) -> OutboxPublisher:
    return OutboxPublisher(outbox, transport, "gw-1", heartbeat_interval_s=3600, backoff_min_s=0.01,
                           backoff_max_s=0.02, uploader=uploader, clips_root=clips)


def test_order_is_kept_through_a_retryable_upload_failure(tmp_path: Path, clips: Path, caplog) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    sent = [local_candidate(clips) for _ in range(3)]
    for c in sent:
        assert put_candidate(outbox, c)
    transport, uploader = RecordingTransport(), FolderUploader(tmp_path / "bucket", retryable=3)
    pub = publisher(outbox, transport, uploader, clips)

    with caplog.at_level(logging.DEBUG, logger="edge_agent.publisher"):
        for _ in range(3):
            assert pub.run_once() > 0
            assert [c.event_id for c in transport.candidates()] == []  # nothing overtakes the first
            assert outbox.count_pending() == 3
        assert pub.run_once() == 0.5
    assert [c.event_id for c in transport.candidates()] == [c.event_id for c in sent]
    assert outbox.count_pending() == 0
    assert outbox.pending_event_ids() == set()
    first = transport.candidates()[0]
    assert first.clip is not None and first.clip.kind == "s3"
    assert first.clip.uri == f"s3://media/gateways/gw-1/clips/cam-front/{first.event_id}.avi"
    assert first.clip.sha256 == sent[0].clip.sha256
    warnings = [r for r in caplog.records if r.getMessage().startswith("clip upload failed")]
    assert len(warnings) == 1  # once per outage, not per attempt
    assert [r.getMessage() for r in caplog.records].count("clip uploads resumed") == 1


def test_a_refused_upload_publishes_the_candidate_without_clip_and_says_why(
        tmp_path: Path, clips: Path, caplog) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    refused, fine = local_candidate(clips), local_candidate(clips)
    put_candidate(outbox, refused)
    put_candidate(outbox, fine)
    transport = RecordingTransport()
    pub = publisher(outbox, transport, FolderUploader(tmp_path / "bucket", refuse={refused.event_id}), clips)

    with caplog.at_level(logging.ERROR, logger="edge_agent.publisher"):
        pub.run_once()
    got = transport.candidates()
    assert [c.event_id for c in got] == [refused.event_id, fine.event_id]
    assert got[0].clip is None
    assert got[0].reasons == ["track score over threshold", "clip not uploaded: AccessDenied"]
    assert got[1].clip is not None and got[1].clip.kind == "s3"
    assert got[1].reasons == ["track score over threshold"]
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.event_id == refused.event_id


def test_a_restart_between_upload_and_puback_does_not_upload_again(tmp_path: Path, clips: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(path)
    candidate = local_candidate(clips)
    put_candidate(outbox, candidate)
    transport = RecordingTransport()
    transport.fail_next = 1  # the upload succeeds, the publish does not get its PUBACK
    first = FolderUploader(tmp_path / "bucket")
    assert publisher(outbox, transport, first, clips).run_once() > 0
    assert first.uploads == [candidate.event_id]
    assert outbox.count_pending() == 1
    outbox.close()

    reopened = Outbox(path)  # the process restarted
    again = FolderUploader(tmp_path / "bucket")
    publisher(reopened, transport, again, clips).run_once()
    assert again.uploads == []
    [got] = transport.candidates()
    assert got.clip is not None
    assert got.clip.uri == f"s3://media/gateways/gw-1/clips/cam-front/{candidate.event_id}.avi"
    assert reopened.count_pending() == 0


def test_the_local_uploader_publishes_the_candidate_as_accepted(tmp_path: Path, clips: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    candidate = local_candidate(clips)
    put_candidate(outbox, candidate)
    transport = RecordingTransport()
    publisher(outbox, transport, LocalClips(), clips).run_once()
    published = [(t, p) for t, p in transport.published if "/candidates" in t]
    assert published == [(topics.candidates("gw-1", "cam-front"), candidate.model_dump_json().encode())]


_OLD_SCHEMA = """
CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, topic TEXT NOT NULL,
    payload BLOB NOT NULL, created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, sent_at REAL);
CREATE INDEX outbox_pending ON outbox (sent_at, seq);
"""


def test_an_outbox_file_from_an_older_agent_is_migrated_and_drained(tmp_path: Path, clips: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    candidate = local_candidate(clips)
    db = sqlite3.connect(path)
    db.executescript(_OLD_SCHEMA)
    db.execute("INSERT INTO outbox (event_id, topic, payload, created) VALUES (?, ?, ?, 0)",
               (candidate.event_id, topics.candidates("gw-1", "cam-front"), candidate.model_dump_json().encode()))
    db.commit()
    db.close()

    outbox = Outbox(path)
    [message] = outbox.pending()
    assert (message.event_id, message.clip_upload) == (candidate.event_id, None)
    transport = RecordingTransport()
    publisher(outbox, transport, FolderUploader(tmp_path / "bucket"), clips).run_once()
    [got] = transport.candidates()
    assert got.clip is not None and got.clip.kind == "s3"
    assert outbox.count_pending() == 0


def test_s3_uploader_refuses_a_clip_outside_the_root_a_missing_one_and_a_changed_one(
        tmp_path: Path, clips: Path) -> None:
    uploader = S3Uploader("media", "gw-1", client=object())  # refused before any call reaches the client
    escaping = make_candidate(clip=ClipRef(kind="local", uri="../outside.avi"))
    write_avi(tmp_path / "outside.avi")
    with pytest.raises(UploadRefused, match="outside the clip root"):
        uploader.upload(escaping, clips)
    with pytest.raises(UploadRefused, match="missing"):
        uploader.upload(make_candidate(clip=ClipRef(kind="local", uri="cam-front/none.avi")), clips)
    changed = local_candidate(clips)
    assert changed.clip is not None
    (clips / changed.clip.uri).write_bytes(b"not the recorded segment")
    with pytest.raises(UploadRefused, match="changed on disk"):
        uploader.upload(changed, clips)
    assert clip_key("gw-1", "cam-front", "01ABC", ".AVI") == "gateways/gw-1/clips/cam-front/01ABC.avi"
