"""Clip sources and the frame reader."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from cloud.clips import ClipRouter, ClipTransportNotSupported, LocalClipSource, read_frames
from cloud.clips.s3 import parse_s3_uri
from cloud.ports import ClipNotFound, ClipRejected, ClipUnreadable
from contracts import ClipRef
from tests.unit.cloud_factories import tiny_jpeg, write_avi


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_avi(tmp_path / "clips" / "cam" / "a.avi")
    return tmp_path / "clips"


@pytest.mark.parametrize("uri", ["../secret.avi", "cam/../../x.avi", "/etc/passwd", "\\\\host\\x", "C:/x.avi",
                                 "cam\\..\\..\\x"])
def test_local_source_refuses_path_tricks(root: Path, tmp_path: Path, uri: str) -> None:
    with pytest.raises(ClipRejected):
        LocalClipSource(root).fetch(ClipRef(kind="local", uri=uri), tmp_path)


def test_local_source_refuses_symlink_out_of_root(root: Path, tmp_path: Path) -> None:
    (tmp_path / "outside.avi").write_bytes(b"x")
    os.symlink(tmp_path / "outside.avi", root / "link.avi")
    with pytest.raises(ClipRejected, match="leaves the clip root"):
        LocalClipSource(root).fetch(ClipRef(kind="local", uri="link.avi"), tmp_path)


def test_local_source_returns_the_file_and_checks_integrity(root: Path, tmp_path: Path) -> None:
    data = (root / "cam" / "a.avi").read_bytes()
    ref = ClipRef(kind="local", uri="cam/a.avi", sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    assert LocalClipSource(root).fetch(ref, tmp_path) == (root / "cam" / "a.avi").resolve()
    with pytest.raises(ClipUnreadable, match="sha256"):
        LocalClipSource(root).fetch(ref.model_copy(update={"sha256": "0" * 64}), tmp_path)
    with pytest.raises(ClipUnreadable, match="bytes"):
        LocalClipSource(root).fetch(ref.model_copy(update={"size_bytes": 3}), tmp_path)


def test_missing_local_clip_is_transient(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ClipNotFound):
        LocalClipSource(root).fetch(ClipRef(kind="local", uri="cam/later.avi"), tmp_path)


def test_router_names_a_kind_it_has_no_adapter_for(root: Path, tmp_path: Path) -> None:
    router = ClipRouter({"local": LocalClipSource(root)})
    with pytest.raises(NotImplementedError, match="no clip adapter configured for kind 'kvs'") as info:
        router.fetch(ClipRef(kind="kvs", uri="kvs://front-door"), tmp_path)
    assert isinstance(info.value, ClipTransportNotSupported)
    assert isinstance(info.value, ClipRejected)  # permanent: dead-lettered, not retried forever
    assert router.fetch(ClipRef(kind="local", uri="cam/a.avi"), tmp_path).name == "a.avi"


def test_parse_s3_uri() -> None:
    assert parse_s3_uri("s3://my-bucket/clips/a b.avi") == ("my-bucket", "clips/a b.avi")
    for bad in ("http://x/y", "s3://B/k", "s3://bucket/", "s3://bucket"):
        with pytest.raises(ClipRejected):
            parse_s3_uri(bad)


def test_read_frames_video_still_and_ranges(root: Path, tmp_path: Path) -> None:
    frames = list(read_frames(root / "cam" / "a.avi"))
    assert [round(t, 2) for t, _ in frames] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert frames[0][1].shape == (24, 32, 3)
    assert [round(t, 2) for t, _ in read_frames(root / "cam" / "a.avi", start_s=0.3, end_s=0.9, every_s=0.4)] == [
        0.4, 0.8]
    still = tmp_path / "s.jpg"
    still.write_bytes(tiny_jpeg())
    [(ts, image)] = list(read_frames(still))
    assert ts == 0.0 and image.shape == (24, 32, 3)


def test_read_frames_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.avi").write_bytes(b"not a video at all")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ClipUnreadable):
        list(read_frames(tmp_path / "bad.avi"))
    with pytest.raises(ClipUnreadable, match=r"bad\.png"):
        list(read_frames(tmp_path / "bad.png"))
    with pytest.raises(ClipNotFound):
        list(read_frames(tmp_path / "none.avi"))


def test_read_frames_follows_presentation_times(tmp_path: Path) -> None:
    """A variable-rate segment (the gateway's MKV): times are the frames' own, ranges cut on them."""
    import numpy as np

    from models.video import SegmentWriter

    writer = SegmentWriter(tmp_path / "v.mkv", 32, 24)
    for i, ts in enumerate([0.0, 0.1, 0.15, 1.0, 2.5, 2.6]):
        writer.write(ts, np.full((24, 32, 3), i * 40, np.uint8))
    writer.close()
    assert [round(t, 3) for t, _ in read_frames(tmp_path / "v.mkv")] == [0.0, 0.1, 0.15, 1.0, 2.5, 2.6]
    picked = list(read_frames(tmp_path / "v.mkv", start_s=0.1, end_s=2.5, every_s=0.5))
    assert [round(t, 3) for t, _ in picked] == [0.1, 1.0, 2.5]
    assert [round(float(f.mean()) / 40) for _, f in picked] == [1, 3, 4]
