"""The embedded learning loop, callable: footage with a recurring false alert, `vigia demo` runs on one data
dir, feedback between them. Other tests (console, sampler) extend the same scripted run.

The false alert: a real photograph of a person (scikit-image's "camera": a man with a camera) hung as a
poster on a wall of a real scene (the south edge of OpenCV's vtest plaza). The gateway and the verifier
both see a person, so the customer is alerted; a poster is not a person. Later, real people walk along the
same edge of the plaza while the poster still hangs there: they must still alert.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from contracts import GatewayConfig

CAMERA = "plaza-south"
CROP_ROWS = (336, 576)  # the plaza's south edge: nobody there in vtest's first seconds, walked along at 52-62 s
POSTER_AT = (600, 20)  # x, y of the poster's top-left corner in the cropped frame
POSTER_SIZE = (140, 200)  # width, height
QUIET_S = ((0.0, 4.0), (8.0, 12.0))  # nobody on this edge: the poster alone, on two occasions
WALKERS_S = (53.0, 59.0)  # people walking along this edge, one of them under the poster


def poster(picture: np.ndarray) -> np.ndarray:
    return cv2.resize(picture, POSTER_SIZE, interpolation=cv2.INTER_AREA)


def cut_scene(vtest: Path, seconds: tuple[float, float], picture: np.ndarray, dst: Path) -> Path:
    """vtest's south edge between `seconds`, with the poster on the wall, as an MJPG clip."""
    cap = cv2.VideoCapture(str(vtest))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.set(cv2.CAP_PROP_POS_FRAMES, int(seconds[0] * fps))
    art = poster(picture)
    (x, y), (w, h) = POSTER_AT, POSTER_SIZE
    writer = None
    for _ in range(int((seconds[1] - seconds[0]) * fps)):
        ok, frame = cap.read()
        if not ok:
            break
        frame = frame[CROP_ROWS[0]:CROP_ROWS[1]].copy()
        frame[y:y + h, x:x + w] = art
        if writer is None:
            writer = cv2.VideoWriter(str(dst), cv2.VideoWriter.fourcc(*"MJPG"), fps,
                                     (frame.shape[1], frame.shape[0]))
        writer.write(frame)
    cap.release()
    assert writer is not None, f"no frame read from {vtest}"
    writer.release()
    return dst


def make_footage(vtest: Path, picture: np.ndarray, folder: Path) -> Path:
    """The camera's folder of clips, in order: the poster alone (twice), then people walking past it."""
    cam = folder / CAMERA
    cam.mkdir(parents=True, exist_ok=True)
    cut_scene(vtest, QUIET_S[0], picture, cam / "a-quiet.avi")
    cut_scene(vtest, QUIET_S[1], picture, cam / "b-quiet-again.avi")
    cut_scene(vtest, WALKERS_S, picture, cam / "c-walkers.avi")
    return cam


def gateway_config(path: Path) -> Path:
    """The camera looks at least once a second even when nothing moves (a poster does not), and its 'already
    announced stationary object' rule is off (ttl 0): only the false-positive memory can stop a repeat."""
    config = GatewayConfig.model_validate({"cameras": {CAMERA: {
        "motion": {"keyframe_interval_s": 0.5}, "tracking": {"stationary_ttl_s": 0}}}})
    path.write_text(config.model_dump_json())
    return path


def demo(data: Path, sources: list[Path], config: Path) -> dict[str, str]:
    """One `vigia demo` run (in process); this run's events: event id → verdict."""
    from vigia.demo import run_demo

    assert run_demo([str(s) for s in sources], data, config) == 0
    last = json.loads((data / "runs.jsonl").read_text().splitlines()[-1])
    return {e["event_id"]: e["decision"] for e in last["events"]}


def notified(data: Path) -> list[str]:
    path = data / "cloud" / "notifications.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["message"]["event_id"] for line in path.read_text().splitlines()]


def clip_of(data: Path, event_id: str) -> str:
    """Which source clip an event came from (the stored candidate's source)."""
    from cloud.events.sqlite import SqliteEventStore

    record = SqliteEventStore(data / "cloud" / "events.sqlite3").get(event_id)
    assert record is not None
    return Path((record.candidate_facts() or {}).get("source", "")).name
