"""`vigia events list`: the event store, newest first, as a table or JSON.

The store is the one the cloud runtime uses (cloud.settings: VIGIA_STORE=aws → DynamoDB, else SQLite under
the data dir; `--data-dir` may name a cloud data dir or a demo's). A bad filter is one stderr line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DECISIONS = ("confirmed", "rejected", "uncertain")


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`2h`, `30m`, `7d` (that long ago), or an ISO date / date-time (UTC unless it says otherwise)."""
    value = text.strip()
    match = _RELATIVE.match(value)
    if match:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {text!r}: give a duration like 30m, 2h, 7d or an ISO time like "
                         "2024-05-01T08:00:00Z") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("events", help="list stored events (SQLite embedded, DynamoDB with VIGIA_STORE=aws)")
    esub = parser.add_subparsers(dest="events_command", required=True)
    lst = esub.add_parser("list", help="events newest first, with their verdicts and labels")
    lst.add_argument("--camera", help="only this camera")
    lst.add_argument("--verdict", choices=DECISIONS, help="only this verifier decision")
    lst.add_argument("--since", help="30m, 2h, 7d, or an ISO time (UTC)")
    lst.add_argument("--label", help="only events labelled person, not-person or unsure")
    lst.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    lst.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    lst.add_argument("--data-dir", type=Path, help="cloud or demo data dir (default VIGIA_DATA_DIR)")
    lst.set_defaults(func=_list)


def _list(args: argparse.Namespace) -> int:
    from cloud.feedback import parse_label
    from cloud.feedback.wiring import build_feedback, require_store, settings_for_data_dir

    try:
        since = parse_since(args.since) if args.since else None
        label = parse_label(args.label) if args.label else None
        if not 1 <= args.limit <= 10_000:
            raise ValueError(f"--limit {args.limit}: give 1 to 10000")
        settings = settings_for_data_dir(args.data_dir)
        require_store(settings)
    except ValueError as exc:
        print(f"vigia events list: error: {exc}", file=sys.stderr)
        return 2
    service = build_feedback(settings)
    records = service.events.query(camera_id=args.camera, decision=args.verdict, since=since, label=label,
                                   limit=args.limit)
    if args.json:
        print(json.dumps([_row(r) for r in records], indent=1))
    else:
        print(format_table(records))
    return 0


def _row(record) -> dict:
    return {
        "event_id": record.event_id, "camera_id": record.camera_id, "gateway_id": record.gateway_id,
        "started_at": record.started_at, "decision": record.decision, "score": record.score,
        "edge_score": record.edge_score, "notified": record.notified, "label": record.label,
        "labeled_at": record.labeled_at, "feedback": json.loads(record.feedback_json or "[]"),
        "clip_key": record.clip_key, "snapshot_key": record.snapshot_key,
    }


def format_table(records) -> str:
    if not records:
        return "no events match"
    head = f"{'event id':<26}  {'camera':<16} {'started (UTC)':<19}  {'verdict':<9} {'score':>5} {'edge':>5} " \
           f"{'notified':<8} label"
    lines = [head, "-" * len(head)]
    for r in records:
        lines.append(f"{r.event_id:<26}  {r.camera_id[:16]:<16} {r.started_at[:19]:<19}  {r.decision:<9} "
                     f"{r.score:>5.2f} {r.edge_score:>5.2f} {'yes' if r.notified else 'no':<8} {r.label or '-'}")
    return "\n".join(lines)
