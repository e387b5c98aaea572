"""Gateway → Kinesis Video (tests/kvs_fake.py, a wire-level FAKE on loopback) → verifier, with real footage.

The gateway's own segment recorder writes the event's H.264 segment from vtest frames; KvsUploader sends
it with PutMedia (SigV4, ACK stream); KvsClipSource fetches it back with GetClip and the verifier's reader
decodes it. The frames and times it decodes must be the ones the gateway recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import numpy as np
import pytest

from cloud.clips.frames import read_frames
from cloud.clips.kvs import KvsClipSource
from cloud.ports import ClipNotFound
from contracts import Candidate, ClipRef
from edge_agent.clip_upload import UploadRefused
from edge_agent.clip_upload.kvs import KvsUploader
from edge_agent.clip_upload.mkv import Fragment, FragmentedClip
from edge_agent.segments import SegmentRecorder
from tests.footage import first_seconds
from tests.kvs_fake import ACCESS_KEY, REGION, SECRET_KEY, FakeKvs
from tests.unit.cloud_factories import make_candidate

THING = "gw-1"
CAMERA = "cam-front"
STREAM = f"vigia-{THING}-{CAMERA}"
SOURCE_FPS = 10.0
WALL_START = datetime(2026, 11, 30, 9, 15, 2, 250000, tzinfo=UTC)  # wall time of the event start


@pytest.fixture
def fake() -> Iterator[FakeKvs]:
    with FakeKvs() as server:
        yield server


def session(secret: str = SECRET_KEY) -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=secret, region_name=REGION)


def uploader(fake: FakeKvs, secret: str = SECRET_KEY) -> KvsUploader:
    return KvsUploader(THING, session=session(secret), endpoint_url=fake.url, backoff_s=0.0, retention_hours=48)


def clip_source(fake: FakeKvs) -> KvsClipSource:
    s = session()
    return KvsClipSource(client=s.client("kinesisvideo", endpoint_url=fake.url),
                         archive_factory=lambda endpoint: s.client("kinesis-video-archived-media",
                                                                   endpoint_url=endpoint))


@pytest.fixture(scope="module")
def recorded(vtest: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Candidate]:
    """6 s of vtest through the agent's segment recorder: 1 s of pre-roll, the event from 1 s to 6 s."""
    frames, fps = first_seconds(vtest, 6.0)
    assert fps == SOURCE_FPS
    root = tmp_path_factory.mktemp("clips")
    recorder = SegmentRecorder(root, CAMERA, SOURCE_FPS)
    event_start_s = 1.0
    candidate = make_candidate(camera_id=CAMERA, started_at=WALL_START)
    for index, frame in enumerate(frames):
        ts = index / SOURCE_FPS
        if abs(ts - event_start_s) < 1e-9:
            recorder.push(ts, frame)
            recorder.start(candidate.event_id)
            continue
        recorder.push(ts, frame)
    local = recorder.finish()
    end_s = (len(frames) - 1) / SOURCE_FPS
    candidate = candidate.model_copy(update={
        "clip": local, "start_offset_s": event_start_s, "end_offset_s": end_s,
        "ended_at": WALL_START + timedelta(seconds=end_s - event_start_s)})
    return root, candidate


def local_frames(root: Path, candidate: Candidate) -> list[tuple[float, np.ndarray]]:
    assert candidate.clip is not None
    return list(read_frames(root / candidate.clip.uri))


def test_the_verifier_decodes_the_frames_and_times_the_gateway_sent(
        fake: FakeKvs, recorded: tuple[Path, Candidate], tmp_path: Path) -> None:
    root, candidate = recorded
    ref = uploader(fake).upload(candidate, root)

    assert candidate.clip is not None
    wall_zero = WALL_START.timestamp() - candidate.start_offset_s + candidate.clip.offset_s
    sent = local_frames(root, candidate)
    assert ref.kind == "kvs" and ref.uri == f"kvs://{STREAM}"
    assert ref.start_ts == pytest.approx(wall_zero + sent[0][0], abs=1e-3)
    assert ref.end_ts == pytest.approx(wall_zero + sent[-1][0], abs=1e-3)
    assert ref.offset_s == candidate.clip.offset_s
    # The stream was created with its retention; fragments are stored with producer timestamps.
    assert fake.streams[STREAM].retention_hours == 48
    stored = fake.streams[STREAM].fragments
    assert len(stored) == 3  # a key frame every 2 s of a 5 s segment
    assert stored[0].timecode_ms == round(ref.start_ts * 1000)

    path = clip_source(fake).fetch(ref, tmp_path)
    got = list(read_frames(path))
    assert [round(ts, 3) for ts, _ in got] == [round(ts, 3) for ts, _ in sent]
    assert len(got) == 60  # 6 s at 10 fps, the 1 s of pre-roll included
    assert [float(img.mean()) for _, img in got] == [float(img.mean()) for _, img in sent]
    assert np.array_equal(got[-1][1], sent[-1][1])  # remuxed, not re-encoded: identical pictures


def test_uploading_the_same_event_twice_sends_nothing_twice(
        fake: FakeKvs, recorded: tuple[Path, Candidate]) -> None:
    root, candidate = recorded
    first = uploader(fake).upload(candidate, root)
    again = uploader(fake).upload(candidate, root)  # a fresh process: only the stream says it is there
    assert again == first
    assert fake.put_media_calls == 1
    assert len(fake.streams[STREAM].fragments) == 3


def test_throttled_then_persisted(fake: FakeKvs, recorded: tuple[Path, Candidate]) -> None:
    root, candidate = recorded
    fake.faults.append("throttle")
    uploader(fake).upload(candidate, root)
    assert fake.put_media_calls == 2
    assert len(fake.streams[STREAM].fragments) == 3


@pytest.mark.parametrize("error_id", [4000, 5000])
def test_a_retryable_ack_error_is_retried(fake: FakeKvs, recorded: tuple[Path, Candidate], error_id: int) -> None:
    root, candidate = recorded
    fake.faults.append(f"ack_error:{error_id}")
    uploader(fake).upload(candidate, root)
    assert fake.put_media_calls == 2
    assert len(fake.streams[STREAM].fragments) == 3


def test_a_dropped_connection_resumes_after_the_last_persisted_fragment(
        fake: FakeKvs, recorded: tuple[Path, Candidate], tmp_path: Path) -> None:
    root, candidate = recorded
    fake.faults.append("drop_after:1")
    ref = uploader(fake).upload(candidate, root)
    stored = fake.streams[STREAM].fragments
    timecodes = [f.timecode_ms for f in stored]
    assert fake.put_media_calls == 2
    assert timecodes == sorted(set(timecodes)) and len(timecodes) == 3  # nothing twice, nothing missing
    assert len(list(read_frames(clip_source(fake).fetch(ref, tmp_path)))) == len(local_frames(root, candidate))


def test_invalid_matroska_is_refused_clearly(fake: FakeKvs) -> None:
    producer = uploader(fake)
    endpoint = producer.ensure_stream(STREAM)
    garbage = FragmentedClip(b"not matroska at all", (Fragment(1764500000000, b"\x00" * 32),),
                             1764500000000, 1764500000000)
    with pytest.raises(UploadRefused, match="4006 INVALID_MKV_DATA"):
        producer.put_fragments(STREAM, endpoint, garbage, "01JDEADBEEF")
    assert fake.put_media_calls == 1  # refused at once, not retried
    assert fake.streams[STREAM].fragments == []


def test_bad_credentials_are_refused(fake: FakeKvs, recorded: tuple[Path, Candidate]) -> None:
    root, candidate = recorded
    with pytest.raises(UploadRefused, match="InvalidSignatureException"):
        uploader(fake, secret="not-the-secret").upload(candidate, root)
    assert fake.streams == {}
    # PutMedia itself checks the signature too (a stream made by someone else, a key that is wrong).
    endpoint = uploader(fake).ensure_stream(STREAM)
    clip = FragmentedClip(b"header", (Fragment(1764500000000, b"cluster"),), 1764500000000, 1764500000000)
    with pytest.raises(UploadRefused, match="403 InvalidSignatureException"):
        uploader(fake, secret="not-the-secret").put_fragments(STREAM, endpoint, clip, "01JDEADBEEF")
    assert fake.put_media_calls == 0  # refused before the fake looked at the media


def test_a_range_with_no_fragment_is_not_found_yet(fake: FakeKvs, tmp_path: Path) -> None:
    uploader(fake).ensure_stream(STREAM)
    ref = ClipRef(kind="kvs", uri=f"kvs://{STREAM}", start_ts=1764500000.0, end_ts=1764500005.0)
    with pytest.raises(ClipNotFound):
        clip_source(fake).fetch(ref, tmp_path)
