"""The review API over a real SQLite store filled through the real cloud pipeline (stand-in verifier), served
by the real HTTP server on a loopback port: list, filters, one event, media with ranges, feedback, errors,
tokens, review sets."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np
import pytest

from cloud.api import ConsoleServer, build_console
from cloud.api.playable import make_playable
from cloud.events.sqlite import SqliteEventStore
from cloud.runtime.wiring import build_pipeline
from cloud.settings import CloudSettings
from contracts import ClipRef
from tests.unit.cloud_factories import decide_by_candidate_score, make_candidate, write_avi

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Four events on two cameras: confirmed (0.9, with a clip), uncertain (0.5), rejected (0.1), confirmed
    on cam-back (0.8), started a minute apart."""
    root = tmp_path_factory.mktemp("api")
    write_avi(root / "incoming" / "cam-front" / "ev.avi", frames=6)
    settings = CloudSettings(store="local", data_dir=root / "cloud", clip_root=root / "incoming")
    pipeline = build_pipeline(settings, decide_by_candidate_score)
    made = {}
    for i, (name, camera, score, clip) in enumerate([
        ("front_confirmed", "cam-front", 0.9, ClipRef(kind="local", uri="cam-front/ev.avi", fps=5.0)),
        ("front_uncertain", "cam-front", 0.5, None),
        ("front_rejected", "cam-front", 0.1, None),
        ("back_confirmed", "cam-back", 0.8, None),
    ]):
        candidate = make_candidate(camera_id=camera, score=score, clip=clip, started_at=T0 + timedelta(minutes=i))
        assert pipeline.process(candidate.model_dump_json()).event_id == candidate.event_id
        made[name] = candidate
    return {"settings": settings, "candidates": made, "root": root}


@pytest.fixture(scope="module")
def server(world: dict) -> Iterator[ConsoleServer]:
    srv = build_console(world["settings"], cache_dir=world["root"] / "cache", port=0, default_by="tester")
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def call(srv: ConsoleServer, method: str, path: str, body: object = None, headers: dict | None = None,
         raw: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    hdrs = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    conn.close()
    return out


def get_json(srv: ConsoleServer, path: str, **kw) -> tuple[int, dict]:
    status, _, body = call(srv, "GET", path, **kw)
    return status, json.loads(body)


def ids(srv: ConsoleServer, query: str = "") -> list[str]:
    status, data = get_json(srv, f"/api/events{query}")
    assert status == 200, data
    return [e["event_id"] for e in data["events"]]


# -- list and filters ---------------------------------------------------------------------------------
def test_list_is_newest_first_and_filters_select_exactly(server: ConsoleServer, world: dict) -> None:
    c = {k: v.event_id for k, v in world["candidates"].items()}
    newest_first = [c["back_confirmed"], c["front_rejected"], c["front_uncertain"], c["front_confirmed"]]
    assert ids(server) == newest_first
    assert ids(server, "?camera=cam-back") == [c["back_confirmed"]]
    assert ids(server, "?verdict=confirmed") == [c["back_confirmed"], c["front_confirmed"]]
    assert ids(server, "?camera=cam-front&verdict=confirmed") == [c["front_confirmed"]]
    assert ids(server, "?score_low=0.4&score_high=0.85") == [c["back_confirmed"], c["front_uncertain"]]
    since, until = (T0 + timedelta(minutes=1)).isoformat(), (T0 + timedelta(minutes=2)).isoformat()
    window = f"?since={since}&until={until}".replace("+", "%2B")
    assert ids(server, window) == [c["front_rejected"], c["front_uncertain"]]
    assert ids(server, "?limit=1") == [c["back_confirmed"]]
    _, data = get_json(server, "/api/events?limit=1")
    first = data["events"][0]
    assert first["snapshot_url"] == f"/api/events/{c['back_confirmed']}/snapshot" and first["clip_url"] is None
    assert first["decision"] == "confirmed" and first["camera_id"] == "cam-back" and first["score"] == 0.8


@pytest.mark.parametrize(("query", "says"), [
    ("?verdict=maybe", "verdict='maybe' is not one of confirmed, rejected, uncertain"),
    ("?camera=../etc", "camera id '../etc' is not valid"),
    ("?score_low=1.5", "score_low='1.5' is outside 0..1"),
    ("?score_low=nan", "score_low='nan' is outside 0..1"),
    ("?score_low=0.8&score_high=0.2", "score_low is above score_high"),
    ("?since=yesterday", "since='yesterday' is not an ISO 8601 time"),
    ("?limit=0", "limit='0' is not a whole number in 1..500"),
    ("?label=cat", "label='cat' is not one of person, not-person, unsure"),
    ("?colour=red", "unknown parameter(s) colour"),
    ("?verdict=confirmed&verdict=rejected", "verdict given 2 times"),
])
def test_bad_queries_are_400_naming_the_parameter(server: ConsoleServer, query: str, says: str) -> None:
    status, data = get_json(server, f"/api/events{query}")
    assert status == 400
    assert data["error"].startswith(says)


# -- one event and its media ----------------------------------------------------------------------------
def test_event_detail_has_both_stages_boxes_and_frame_sizes(server: ConsoleServer, world: dict) -> None:
    candidate = world["candidates"]["front_confirmed"]
    status, ev = get_json(server, f"/api/events/{candidate.event_id}")
    assert status == 200
    assert ev["decision"] == "confirmed" and ev["verdict"]["reasons"] == ["candidate score 0.90"]
    gateway = ev["gateway"]
    assert (gateway["frame_width"], gateway["frame_height"]) == (32, 24)
    assert gateway["boxes"] == [b.model_dump() for b in candidate.boxes]
    assert gateway["best_frame_offset_s"] == 2.0 and gateway["reasons"] == ["track score over threshold"]
    assert gateway["source"] == "rtsp://cam/1"
    assert ev["verdict"]["boxes"] == [b.model_dump() for b in candidate.boxes]  # the stand-in echoes them
    # the verifier's boxes are in the clip's pixels: read from the stored clip (32x24 MJPG)
    assert (ev["verdict"]["frame_width"], ev["verdict"]["frame_height"], ev["verdict"]["frame_size_from"]) == (
        32, 24, "clip")
    assert ev["playable_clip_url"].endswith("/clip.mp4") and ev["download_clip_url"].endswith("/clip?download=1")
    assert ev["feedback"] == [] and ev["label"] is None


def test_snapshot_is_the_candidates_jpeg(server: ConsoleServer, world: dict) -> None:
    candidate = world["candidates"]["front_uncertain"]
    status, headers, body = call(server, "GET", f"/api/events/{candidate.event_id}/snapshot")
    assert status == 200 and headers["content-type"] == "image/jpeg" and body == candidate.snapshot_jpeg


def test_clip_supports_ranges_and_download(server: ConsoleServer, world: dict) -> None:
    eid = world["candidates"]["front_confirmed"].event_id
    whole = (world["root"] / "incoming" / "cam-front" / "ev.avi").read_bytes()
    status, headers, body = call(server, "GET", f"/api/events/{eid}/clip")
    assert status == 200 and body == whole and headers["accept-ranges"] == "bytes"
    assert headers["content-type"] == "video/x-msvideo"
    status, headers, body = call(server, "GET", f"/api/events/{eid}/clip", headers={"Range": "bytes=10-29"})
    assert status == 206 and body == whole[10:30] and headers["content-range"] == f"bytes 10-29/{len(whole)}"
    status, headers, body = call(server, "GET", f"/api/events/{eid}/clip", headers={"Range": "bytes=-16"})
    assert status == 206 and body == whole[-16:]
    status, headers, body = call(server, "GET", f"/api/events/{eid}/clip", headers={"Range": f"bytes={len(whole)}-"})
    assert status == 416 and headers["content-range"] == f"bytes */{len(whole)}"
    status, headers, _ = call(server, "GET", f"/api/events/{eid}/clip?download=1")
    assert status == 200 and headers["content-disposition"] == f'attachment; filename="{eid}.avi"'
    no_clip = world["candidates"]["front_rejected"].event_id
    status, data = get_json(server, f"/api/events/{no_clip}/clip")
    assert (status, data) == (404, {"error": "this event has no clip"})


def test_playable_clip_is_h264_mp4_with_every_frame(server: ConsoleServer, world: dict, tmp_path: Path) -> None:
    eid = world["candidates"]["front_confirmed"].event_id
    status, headers, body = call(server, "GET", f"/api/events/{eid}/clip.mp4")
    assert status == 200 and headers["content-type"] == "video/mp4"
    out = tmp_path / "got.mp4"
    out.write_bytes(body)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) == 6
    again = call(server, "GET", f"/api/events/{eid}/clip.mp4", headers={"Range": "bytes=0-99"})
    assert again[0] == 206 and again[2] == body[:100]  # served from the cache, seekable


def test_h264_is_remuxed_not_reencoded(tmp_path: Path) -> None:
    src = tmp_path / "seg.mkv"
    with av.open(str(src), "w") as out:  # a gateway-like Matroska/H.264 segment
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(12):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with av.open(str(src)) as container:
        packets_in = [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]
    dst = tmp_path / "seg.mp4"
    assert make_playable(src, dst) == "remux"
    with av.open(str(dst)) as container:
        packets_out = [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]
    assert packets_out == packets_in  # the same compressed frames, copied (B-frames: decode times rebuilt)
    with av.open(str(dst)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 12


def test_unknown_and_malformed_event_ids(server: ConsoleServer) -> None:
    status, data = get_json(server, "/api/events/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert (status, data) == (404, {"error": "no event 01ARZ3NDEKTSV4RRFFQ69G5FAV"})
    status, data = get_json(server, "/api/events/not-an-id")
    assert status == 400 and data["error"].startswith("event_id must be a 26-character ULID")
    status, data = get_json(server, "/api/events/%2e%2e%2fsecret/snapshot")
    assert status == 404 and data["error"].startswith("no such API route")
    status, data = get_json(server, "/static/../app.py")
    assert status == 404


# -- feedback -------------------------------------------------------------------------------------------------
def stored(world: dict, event_id: str):
    store = SqliteEventStore(world["settings"].data_dir / "events.sqlite3")
    try:
        return store.get(event_id)
    finally:
        store.close()


def test_feedback_is_stored_idempotent_and_filterable(server: ConsoleServer, world: dict) -> None:
    eid = world["candidates"]["front_uncertain"].event_id
    status, _, body = call(server, "POST", f"/api/events/{eid}/feedback",
                           body={"label": "person", "note": "walks in at 2 s", "by": "ana"},
                           headers={"X-Vigia-Client": "console"})
    assert status == 200, body
    ev = json.loads(body)
    assert ev["label"] == "person" and [f["by"] for f in ev["feedback"]] == ["ana"]
    record = stored(world, eid)
    assert record.label == "person"
    [entry] = json.loads(record.feedback_json)
    assert (entry["label"], entry["by"], entry["note"], entry["source"]) == ("person", "ana", "walks in at 2 s",
                                                                             "console")
    again = call(server, "POST", f"/api/events/{eid}/feedback", body={"label": "person", "note": "walks in at 2 s",
                                                                       "by": "ana"})
    assert again[0] == 200 and len(json.loads(stored(world, eid).feedback_json)) == 1  # nothing new
    assert ids(server, "?label=person") == [eid]
    # without a name the server's default applies, and an API caller is recorded as such
    rejected = world["candidates"]["front_rejected"].event_id
    status, _, body = call(server, "POST", f"/api/events/{rejected}/feedback", body={"label": "unsure"})
    assert status == 200
    [entry] = json.loads(stored(world, rejected).feedback_json)
    assert (entry["by"], entry["source"]) == ("tester", "api")


@pytest.mark.parametrize(("body", "headers", "status", "says"), [
    ({"label": "cat"}, {}, 400, "label 'cat' is not one of person, not-person, unsure"),
    ({"label": 3}, {}, 400, "label 3 is not one of person, not-person, unsure"),
    ({"label": "person", "colour": "red"}, {}, 400, "unknown field(s) colour"),
    ({"label": "person", "note": "x" * 501}, {}, 400, "1 validation error for FeedbackEntry"),
    ({"label": "person", "by": "x" * 129}, {}, 400, "by must be text of 1-128 characters"),
    (None, {"Content-Type": "text/plain"}, 415, "send the body as Content-Type: application/json"),
    ({"label": "person"}, {"Origin": "http://evil.example"}, 403, "origin 'http://evil.example' may not write"),
])
def test_bad_feedback_is_refused_and_nothing_is_stored(server: ConsoleServer, world: dict, body, headers,
                                                       status: int, says: str) -> None:
    eid = world["candidates"]["back_confirmed"].event_id
    raw = b"label=person" if body is None else None
    got, _, data = call(server, "POST", f"/api/events/{eid}/feedback", body=body, headers=headers, raw=raw)
    assert got == status and json.loads(data)["error"].startswith(says)
    assert stored(world, eid).label is None


def test_feedback_on_unknown_event_is_404_and_bodies_are_bounded(server: ConsoleServer) -> None:
    status, _, data = call(server, "POST", "/api/events/01ARZ3NDEKTSV4RRFFQ69G5FAV/feedback", body={"label": "person"})
    assert (status, json.loads(data)) == (404, {"error": "no event 01ARZ3NDEKTSV4RRFFQ69G5FAV"})
    status, _, data = call(server, "POST", "/api/events/01ARZ3NDEKTSV4RRFFQ69G5FAV/feedback",
                           raw=b"{" + b" " * 20000 + b"}", headers={"Content-Type": "application/json"})
    assert status == 413 and json.loads(data)["error"] == "body of 20002 bytes is over the 16384 byte limit"
    status, _, data = call(server, "GET", "/api/events/01ARZ3NDEKTSV4RRFFQ69G5FAV/feedback")
    assert status == 405 and json.loads(data)["error"] == "GET is not allowed here; use POST"


# -- who may call ------------------------------------------------------------------------------------------
def test_without_a_token_only_this_loopback_host_is_answered(server: ConsoleServer) -> None:
    status, data = get_json(server, "/api/events", headers={"Host": "attacker.example:8600"})
    assert (status, data) == (403, {"error": "host 'attacker.example:8600' is not this console"})


@pytest.fixture
def guarded(world: dict, tmp_path: Path) -> Iterator[ConsoleServer]:
    srv = build_console(world["settings"], cache_dir=tmp_path / "cache", port=0, token="s3cret-token-0123456789")
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_a_token_is_required_when_set(guarded: ConsoleServer, world: dict) -> None:
    status, headers, body = call(guarded, "GET", "/api/events")
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="vigia"'
    assert json.loads(body)["error"].startswith("a valid bearer token is required")
    assert call(guarded, "GET", "/api/events", headers={"Authorization": "Bearer wrong"})[0] == 401
    status, data = get_json(guarded, "/api/events", headers={"Authorization": "Bearer s3cret-token-0123456789"})
    assert status == 200 and len(data["events"]) == 4
    assert call(guarded, "GET", "/")[0] == 200  # the page itself holds no data
    # the page trades the token for a cookie its <img> and <video> requests carry
    assert call(guarded, "POST", "/api/session", body={"token": "nope"})[0] == 401
    status, headers, _ = call(guarded, "POST", "/api/session", body={"token": "s3cret-token-0123456789"})
    assert status == 200 and "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
    cookie = headers["set-cookie"].split(";")[0]
    eid = world["candidates"]["front_uncertain"].event_id
    status, headers, _ = call(guarded, "GET", f"/api/events/{eid}/snapshot", headers={"Cookie": cookie})
    assert status == 200 and headers["content-type"] == "image/jpeg"


def test_console_refuses_to_start_unprotected_or_without_a_store(world: dict, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from cloud.api import ConsoleRefused

    with pytest.raises(ConsoleRefused, match=r"--host 0\.0\.0\.0 is reachable from other machines"):
        build_console(world["settings"], cache_dir=tmp_path, host="0.0.0.0", port=0)
    with pytest.raises(ConsoleRefused, match="no event store at"):
        build_console(CloudSettings(store="local", data_dir=tmp_path / "nothing"), cache_dir=tmp_path, port=0)
    with pytest.raises(ConsoleRefused, match="too short"):
        build_console(world["settings"], cache_dir=tmp_path, port=0, token="short")
    for name, value in {"VIGIA_STORE": "aws", "VIGIA_BUCKET": "media", "VIGIA_TABLE": "events",
                        "VIGIA_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:alerts",
                        "VIGIA_DLQ_URL": "http://127.0.0.1:1/dlq"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConsoleRefused, match="VIGIA_STORE=aws: set VIGIA_API_TOKEN"):
        build_console(CloudSettings(), cache_dir=tmp_path, port=0)


# -- review sets ---------------------------------------------------------------------------------------------
def test_review_sets_written_by_the_sampler_are_listed_and_opened(server: ConsoleServer, world: dict) -> None:
    from cloud.sampler.policy import SamplingPolicy, Window
    from cloud.sampler.review_store import FolderReviewStore
    from cloud.sampler.run import run_sampler
    from cloud.sampler.settings import default_review_root
    from cloud.storage.local import FolderObjectStore

    data = world["settings"].data_dir
    store = SqliteEventStore(data / "events.sqlite3")
    try:
        result = run_sampler(store, FolderObjectStore(data / "objects"), FolderReviewStore(default_review_root(data)),
                             Window.ending(T0 + timedelta(hours=1), hours=2), SamplingPolicy(random_share=1.0))
    finally:
        store.close()
    assert result.run_id
    status, listing = get_json(server, "/api/review-sets")
    assert status == 200 and [s["name"] for s in listing["review_sets"]] == [result.run_id]
    status, manifest = get_json(server, f"/api/review-sets/{result.run_id}")
    assert status == 200 and manifest["run_id"] == result.run_id
    picked = {e["event_id"] for e in manifest["events"]}
    assert picked == {c.event_id for c in world["candidates"].values()}  # random share 1: every event
    status, data = get_json(server, "/api/review-sets/no-such-set")
    assert (status, data) == (404, {"error": "no review set 'no-such-set'"})
    status, data = get_json(server, "/api/review-sets/..")
    assert status == 400 and data["error"] == "review set name '..' is not valid"
