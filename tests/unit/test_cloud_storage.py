"""Object keys, tags and the folder object store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from cloud.storage import FolderObjectStore, clip_key, media_tags, snapshot_key
from contracts import new_event_id

EID = new_event_id()


def test_key_layout_uses_the_utc_day() -> None:
    started = datetime(2026, 11, 28, 23, 30, tzinfo=timezone(timedelta(hours=-3)))  # 02:30 UTC next day
    assert clip_key("cam-1", EID, started, "AVI") == f"clips/cam-1/2026/11/29/{EID}.avi"
    assert snapshot_key("cam-1", EID, datetime(2026, 1, 2, tzinfo=UTC)) == f"clips/cam-1/2026/01/02/{EID}.jpg"


@pytest.mark.parametrize("camera", ["..", "../x", "a/b", "", ".hidden", "a..b", "x" * 65])
def test_bad_camera_ids_are_refused(camera: str) -> None:
    with pytest.raises(ValueError, match="camera id"):
        clip_key(camera, EID, datetime.now(UTC), "avi")


@pytest.mark.parametrize("camera", ["a", "cam.1", "Porch_2-b", "x" * 64])
def test_contract_camera_ids_make_keys(camera: str) -> None:
    assert clip_key(camera, EID, datetime(2026, 1, 2, tzinfo=UTC), "avi") == f"clips/{camera}/2026/01/02/{EID}.avi"


@pytest.mark.parametrize("event_id", ["../../etc", "0" * 25, "short", EID.lower() + "/"])
def test_bad_event_ids_are_refused(event_id: str) -> None:
    with pytest.raises(ValueError, match="event_id"):
        clip_key("cam", event_id, datetime.now(UTC), "avi")


def test_bad_extension_is_refused() -> None:
    with pytest.raises(ValueError, match="extension"):
        clip_key("cam", EID, datetime.now(UTC), "avi/../x")


def test_tags_are_s3_safe() -> None:
    assert media_tags("cam-1", "confirmed", "1.2.0+g#5") == {
        "camera": "cam-1", "verdict": "confirmed", "model_version": "1.2.0+g_5"}


def test_folder_store_same_layout_with_sidecar_tags(tmp_path: Path) -> None:
    store = FolderObjectStore(tmp_path)
    key = snapshot_key("cam-1", EID, datetime(2026, 11, 28, tzinfo=UTC))
    uri = store.put_bytes(key, b"\xff\xd8jpeg", "image/jpeg", {"camera": "cam-1", "verdict": "confirmed"})
    assert (tmp_path / key).read_bytes() == b"\xff\xd8jpeg" and uri.startswith("file://")
    assert store.get_tags(key) == {"camera": "cam-1", "verdict": "confirmed"}
    src = tmp_path / "src.avi"
    src.write_bytes(b"clip")
    store.put_file(key.replace(".jpg", ".avi"), src, "video/x-msvideo", {"verdict": "rejected"})
    assert store.get_bytes(key.replace(".jpg", ".avi")) == b"clip"
    assert not list(tmp_path.rglob(".tmp-*"))
    for bad in ("../x", "/abs", "a//b", "a/../../b"):
        with pytest.raises(ValueError):
            store.put_bytes(bad, b"x", "text/plain", {})
