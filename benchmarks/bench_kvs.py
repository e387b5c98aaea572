"""Kinesis Video path on loopback against tests/kvs_fake.py (a FAKE service, not AWS). Prints JSON.

    python benchmarks/bench_kvs.py [--seconds 20] [--runs 8] [--out benchmarks/results/kvs_fake_loopback.json]

A real event segment (OpenCV's vtest.avi, 768x576, 10 fps, through the agent's SegmentRecorder: H.264,
a key frame every 2 s) is uploaded `runs` times as distinct events (each a new producer-time range) by
KvsUploader, then fetched back by KvsClipSource. Measured per event:
- remux: segment → Matroska fragments with producer timestamps (no re-encode);
- producer: KvsUploader.upload() whole (control plane cached after the first event, ListFragments, PutMedia
  until every fragment is PERSISTED) → MB/s and fragments/s;
- candidate → clip available: from the start of upload() to GetClip having written the clip the verifier
  reads (what a real account adds: WAN round trips, KVS ingestion and indexing, none of it measured here).
The fake runs in the same process (threads) on a shared 2-core machine: compare orders of magnitude only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: tests/ holds the fake

from cloud.clips.kvs import KvsClipSource
from edge_agent.clip_upload.kvs import KvsUploader
from edge_agent.clip_upload.mkv import fragment_segment
from edge_agent.segments import SegmentRecorder
from tests.footage import first_seconds
from tests.kvs_fake import ACCESS_KEY, REGION, SECRET_KEY, FakeKvs
from tests.unit.cloud_factories import make_candidate

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    frames, fps = first_seconds(VTEST, args.seconds)
    with tempfile.TemporaryDirectory() as tmp, FakeKvs() as fake:
        root = Path(tmp) / "clips"
        session = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                        region_name=REGION)
        uploader = KvsUploader("gw-bench", session=session, endpoint_url=fake.url, backoff_s=0.0)
        source = KvsClipSource(client=session.client("kinesisvideo", endpoint_url=fake.url),
                               archive_factory=lambda ep: session.client("kinesis-video-archived-media",
                                                                         endpoint_url=ep))
        base = make_candidate(camera_id="cam-bench", started_at=datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
        recorder = SegmentRecorder(root, "cam-bench", fps)
        recorder.push(0.0, frames[0])
        recorder.start(base.event_id)
        for index, frame in enumerate(frames[1:], start=1):
            recorder.push(index / fps, frame)
        local = recorder.finish()
        segment = root / local.uri
        rows = []
        for run in range(args.runs + 1):  # run 0 warms up (stream creation, endpoints, imports)
            started = base.started_at + timedelta(minutes=run)
            candidate = base.model_copy(update={"clip": local, "started_at": started, "start_offset_s": 0.0,
                                                "ended_at": started + timedelta(seconds=args.seconds)})
            t0 = time.perf_counter()
            clip = fragment_segment(segment, round(started.timestamp() * 1000))
            t_remux = time.perf_counter() - t0
            t1 = time.perf_counter()
            ref = uploader.upload(candidate, root)
            t_upload = time.perf_counter() - t1
            work = Path(tmp) / f"verify-{run}"
            work.mkdir()
            fetched = source.fetch(ref, work)
            t_available = time.perf_counter() - t1
            if run:
                rows.append({"remux_s": t_remux, "upload_s": t_upload, "available_s": t_available,
                             "bytes": len(clip.stream()), "fragments": len(clip.fragments),
                             "clip_bytes": fetched.stat().st_size})
        upload = [r["upload_s"] for r in rows]
        size_mb = rows[0]["bytes"] / 1e6
        result = {
            "benchmark": "kvs_fake_loopback",
            "what": "KvsUploader → tests/kvs_fake.py (FAKE, same process) → KvsClipSource.GetClip, loopback",
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                        "note": "2 cores shared with other engineers' jobs; fake in the same process"},
            "clip": {"source": "vtest.avi 768x576", "seconds": args.seconds, "fps": fps,
                     "segment_bytes": segment.stat().st_size, "stream_bytes": rows[0]["bytes"],
                     "fragments": rows[0]["fragments"]},
            "runs": args.runs,
            "remux_ms": {"median": statistics.median(r["remux_s"] for r in rows) * 1000},
            "producer": {
                "upload_ms_median": statistics.median(upload) * 1000,
                "upload_ms_p90": percentile(upload, 0.9) * 1000,
                "mb_per_s_median": size_mb / statistics.median(upload),
                "fragments_per_s_median": rows[0]["fragments"] / statistics.median(upload),
            },
            "candidate_to_clip_available_ms": {
                "median": statistics.median(r["available_s"] for r in rows) * 1000,
                "p90": percentile([r["available_s"] for r in rows], 0.9) * 1000,
            },
            "put_media_calls": fake.put_media_calls,
            "fragments_stored": sum(len(s.fragments) for s in fake.streams.values()),
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
