"""The end-to-end demo on the embedded default: EdgeAgent → InProcessCloud (real verifier) → local stores.

Edge and cloud stay apart as in production: the only thing that crosses is the candidate message,
serialised to JSON exactly as it would travel over MQTT.

The data dir keeps its state across runs, as a gateway and a cloud would (see `vigia.demo_store`): a
second run adds its events to the same event store and notifications file, and the gateway remembers
what it learnt (false-positive memory, stationary objects already announced). Each run writes
`reports/<run id>.html` (copied to `report.html`) and one line of `runs.jsonl`.
"""

from __future__ import annotations

import base64
import html
import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from contracts import Candidate, Verdict, redact_uri
from vigia.demo_store import DemoDataDir


def run_demo(sources: list[str], data_dir: Path, config: Path | None = None) -> int:
    from cloud.runtime.inprocess import InProcessCloud
    from cloud.runtime.verifier_adapter import real_verify
    from cloud.settings import CloudSettings
    from edge_agent.agent import EdgeAgent
    from edge_agent.config_provider import StaticConfig
    from edge_agent.fp_memory_sync import FpMemorySync
    from edge_agent.outbox import Outbox
    from edge_agent.settings import AgentSettings
    from models.detector import PersonDetector
    from models.prepare import prepare

    store = DemoDataDir.claim(data_dir)  # refuses a folder that is not the demo's; deletes nothing
    earlier = store.runs()
    run_id = store.new_run_id()
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # The demo replays the same footage as new camera time: each run's events are new events.
    edge_settings = AgentSettings(gateway_id="demo-gateway", site_id="demo-site", data_dir=store.edge,
                                  stable_event_ids=False)
    cloud_settings = CloudSettings(store="local", data_dir=store.cloud, clip_root=edge_settings.clips_dir)
    print("preparing models (cached after the first run) ...", flush=True)
    gateway_dir, _ = prepare(edge_settings.model_id, "FP32", progress=lambda m: print("  " + m, flush=True))
    cloud = InProcessCloud(cloud_settings, real_verify(cloud_settings))
    results: list[tuple[Candidate, Verdict | None]] = []

    def to_cloud(candidate: Candidate) -> None:
        wire = candidate.model_dump_json()  # what MQTT would carry
        verdict = cloud.submit(wire)
        outbox.mark_sent(candidate.event_id)  # the cloud took it (a verdict, or its dead-letter folder)
        results.append((candidate, verdict))
        decision = verdict.decision if verdict else "dead-lettered"
        print(f"  event {candidate.event_id} {candidate.camera_id} {candidate.start_offset_s:.1f}-"
              f"{candidate.end_offset_s:.1f}s gateway {candidate.score:.2f} → verifier {decision}"
              + (f" {verdict.score:.2f}" if verdict else ""), flush=True)

    detector = PersonDetector(gateway_dir, mode="throughput")
    outbox = Outbox(edge_settings.outbox_path)
    base = StaticConfig.from_file(config).config if config else None
    gateway_config = gateway_config_from_shadow(store.cloud, edge_settings.gateway_id, base)
    agent = EdgeAgent(edge_settings, gateway_config, detector, outbox, on_candidate=to_cloud)
    # Feedback between runs may have sent the gateway a new false-positive memory: install it first.
    FpMemorySync(gateway_config, agent.fp_memories).reconcile()
    started = time.perf_counter()
    reports = []
    try:
        for source in sources:
            print(f"gateway: {redact_uri(source)}", flush=True)
            reports.extend(agent.run_source(source))
    finally:  # even an interrupted run leaves its report and its line in runs.jsonl (what it stored stays)
        report_path = write_html(store.reports_dir / f"{run_id}.html", results, reports, run_id=run_id)
        shutil.copyfile(report_path, store.latest_report)
        store.record_run({
            "run_id": run_id, "started_at": started_at, "sources": [redact_uri(s) for s in sources],
            "report": report_path.relative_to(store.root).as_posix(),
            "events": [{"event_id": c.event_id, "camera_id": c.camera_id,
                        "decision": v.decision if v else "dead-lettered"} for c, v in results],
        })
        outbox.purge_sent(0)  # acknowledged candidates: the cloud holds them now
        outbox.close()
    elapsed = time.perf_counter() - started

    confirmed = [c for c, v in results if v and v.decision == "confirmed"]
    rejected = [c for c, v in results if v and v.decision == "rejected"]
    uncertain = [c for c, v in results if v and v.decision == "uncertain"]
    earlier_events = sum(len(run.get("events", [])) for run in earlier)
    latency = cloud.latency_summary()
    print()
    print(f"Vigia demo summary (run {run_id}; {len(earlier)} earlier run(s) in {store.root})")
    print(f"  clips            {len(reports)} ({sum(1 for r in reports if r.error)} unreadable)")
    print(f"  frames seen      {sum(r.frames_sampled for r in reports)} sampled, "
          f"{sum(r.detector_frames for r in reports)} looked at by the detector (motion gate)")
    print(f"  candidates       {len(results)} sent by the gateway")
    print(f"  confirmed alerts {len(confirmed)} (notifications: {cloud_settings.data_dir / 'notifications.jsonl'})")
    print(f"  rejected         {len(rejected)}")
    print(f"  uncertain        {len(uncertain)} (kept for review)")
    print(f"  clips, snapshots {cloud_settings.data_dir / 'objects'} (clips/<camera>/<yyyy>/<mm>/<dd>/<event id>)")
    print(f"  dead letters     {cloud_settings.data_dir / 'dead-letter'}")
    print(f"  event records    {cloud_settings.data_dir / 'events.sqlite3'} ({len(results)} added to "
          f"{earlier_events} from earlier runs)")
    print(f"  report           {store.latest_report} (this run; every run's in {store.reports_dir})")
    print(f"  time             {elapsed:.1f}s; candidate → verdict latency {json.dumps(latency)}")
    for r in reports:
        if r.error:
            print(f"  unreadable: {redact_uri(r.clip)}: {redact_uri(r.error)}")
    return 0


def gateway_config_from_shadow(cloud_dir: Path, thing: str, base=None):
    """The demo gateway's config as a connected gateway gets it: its base (the --config file, or the defaults)
    plus the desired state of its `vigia-config` shadow. With no broker the shadow lives in a file of the
    cloud's data dir (cloud.feedback.shadow_refs.LocalShadowBackend), where `vigia feedback` writes it."""
    from cloud.feedback.shadow_refs import SHADOWS_FILE, LocalShadowBackend
    from contracts.topics import CONFIG_SHADOW_NAME
    from edge_agent.config_store import ConfigStore

    config = ConfigStore(initial=base)
    doc = LocalShadowBackend(cloud_dir / SHADOWS_FILE).get(thing, CONFIG_SHADOW_NAME)
    if doc is not None:
        config.apply((doc.get("state") or {}).get("desired") or {}, version=doc.get("version"), full=True)
    return config


def _annotated(candidate: Candidate) -> str:
    image = cv2.imdecode(np.frombuffer(candidate.snapshot_jpeg, np.uint8), cv2.IMREAD_COLOR)
    scale = image.shape[1] / candidate.frame_width
    for box in candidate.boxes:
        p1, p2 = (int(box.x1 * scale), int(box.y1 * scale)), (int(box.x2 * scale), int(box.y2 * scale))
        cv2.rectangle(image, p1, p2, (0, 200, 255), 2)
        cv2.putText(image, f"{box.score:.2f}", (p1[0], max(12, p1[1] - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 200, 255), 1)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return base64.b64encode(buf.tobytes()).decode() if ok else ""


def write_html(path: Path, results: list[tuple[Candidate, Verdict | None]], reports, run_id: str = "") -> Path:
    colours = {"confirmed": "#1a7f37", "rejected": "#b42318", "uncertain": "#b54708"}
    rows = []
    for candidate, verdict in results:
        decision = verdict.decision if verdict else "dead-lettered"
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in (verdict.reasons if verdict else candidate.reasons))
        rows.append(
            f"<div class='ev'><img src='data:image/jpeg;base64,{_annotated(candidate)}'>"
            f"<div><h3 style='color:{colours.get(decision, '#555')}'>{decision.upper()}</h3>"
            f"<p><b>{html.escape(candidate.camera_id)}</b> {candidate.start_offset_s:.1f}–{candidate.end_offset_s:.1f}s"
            f" of {html.escape(candidate.source)}<br>event <code>{candidate.event_id}</code><br>"
            f"gateway score {candidate.score:.2f} ({len(candidate.tracks)} track(s))"
            + (f", verifier score {verdict.score:.2f} over {verdict.frames_examined} frames" if verdict else "")
            + f"</p><ul>{reasons}</ul></div></div>")
    clips = "".join(f"<li>{html.escape(Path(r.clip).name)}: {r.frames_sampled} frames sampled, "
                    f"{r.detector_frames} analysed, {len(r.candidates)} candidate(s)"
                    + (f", <b>unreadable</b>: {html.escape(redact_uri(r.error))}" if r.error else "") + "</li>"
                    for r in reports)
    title = f"Vigia demo run {html.escape(run_id)}" if run_id else "Vigia demo"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>
body{{font-family:sans-serif;margin:2em;max-width:1100px}} .ev{{display:flex;gap:1em;border-bottom:1px solid #ddd;
padding:1em 0}} .ev img{{max-width:520px}} code{{font-size:90%}}</style></head><body>
<h1>{title}</h1><p>Boxes: the gateway's detections on its best frame, with scores. The verifier's own
look (other frames, tiles, a second model) is in its reasons. Only <b>confirmed</b> events notify the
customer.</p><h2>Clips</h2><ul>{clips}</ul>
<h2>Events ({len(results)})</h2>{''.join(rows) or '<p>No candidate.</p>'}</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
