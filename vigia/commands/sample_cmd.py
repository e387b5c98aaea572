"""`vigia sample`: copy the window's least-sure and flagged events to a review set with its manifests.

Embedded default: the demo's data dir (`--data-dir`, events in `D/cloud/events.sqlite3`, review sets in
`D/cloud/review/<run id>/`). AWS mode (VIGIA_STORE=aws): VIGIA_TABLE, VIGIA_BUCKET, VIGIA_REVIEW_BUCKET.
An empty window prints "no events between … and …" and exits 0 without writing a set; bad options exit 2.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
DEFAULT_DATA_DIR = Path("var/demo")


def parse_time(text: str) -> datetime:
    """ISO 8601 date or date-time; without a zone it is UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time (e.g. 2026-11-28T06:00:00Z)") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_since(text: str) -> datetime | timedelta:
    """An ISO time, or a duration before --until: 90m, 24h, 7d."""
    match = _DURATION_RE.match(text.strip())
    if match:
        amount = float(match.group(1))
        if amount <= 0:
            raise argparse.ArgumentTypeError(f"duration {text!r} must be positive")
        return timedelta(**{_UNITS[match.group(2)]: amount})
    return parse_time(text)


def bounded(kind: type, low: float, high: float, *, low_open: bool = False) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from exc
        if value > high or value < low or (low_open and value == low):
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
            raise argparse.ArgumentTypeError(f"{text} is outside {interval}")
        return value

    return parse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sample", help="copy near-threshold, disputed, flagged and random events to a review set + manifest")
    parser.add_argument("--since", type=parse_since,
                        help="window start: ISO time or a duration before --until (24h, 7d); default 24h")
    parser.add_argument("--until", type=parse_time, help="window end, ISO time (default: now)")
    parser.add_argument("--band", type=bounded(float, 0, 0.5, low_open=True),
                        help="± around a threshold that counts as near (default 0.1)")
    parser.add_argument("--per-camera", type=bounded(int, 1, 10_000), help="most events per camera (default 20)")
    parser.add_argument("--max", type=bounded(int, 1, 100_000), dest="max_events",
                        help="most events in the run (default 200)")
    parser.add_argument("--random-share", type=bounded(float, 0, 1),
                        help="share of the window picked at random (default 0.02)")
    parser.add_argument("--seed", type=bounded(int, 0, 2**63 - 1), help="seed of the random share (default 0)")
    parser.add_argument("--data-dir", type=Path,
                        help=f"the demo's data dir on the embedded default (default {DEFAULT_DATA_DIR})")
    parser.add_argument("--json", action="store_true", help="machine-readable result")
    parser.set_defaults(func=_run, _parser=parser)


def _run(args: argparse.Namespace) -> int:
    from cloud.sampler import SamplerSettings, Window, build_sampler, run_sampler

    settings = SamplerSettings()
    if settings.store == "aws":
        if args.data_dir is not None:
            args._parser.error("--data-dir is for the embedded default; VIGIA_STORE=aws samples DynamoDB and S3")
    else:
        data_dir = (args.data_dir or DEFAULT_DATA_DIR).expanduser()
        settings = settings.model_copy(update={"data_dir": data_dir / "cloud", "review_dir": None})
    until = args.until or datetime.now(UTC)
    since = args.since if args.since is not None else timedelta(hours=settings.sample_window_hours)
    since = until - since if isinstance(since, timedelta) else since
    try:
        window = Window(since, until)
    except ValueError as exc:
        args._parser.error(str(exc))
    policy = settings.policy(band=args.band, per_camera=args.per_camera, max_events=args.max_events,
                             random_share=args.random_share, seed=args.seed)
    events, objects, review = build_sampler(settings)
    result = run_sampler(events, objects, review, window, policy)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True))
        return 0
    print(result.message + (_newest_hint(events) if result.considered == 0 and settings.store == "local" else ""))
    if result.run_id:
        for reason, count in result.by_reason.items():
            print(f"  {reason:<45} {count}")
        if result.capped:
            print(f"  ({result.capped} more matched but were over the per-camera or per-run cap)")
        if result.missing_media:
            print(f"  ({result.missing_media} clip(s)/snapshot(s) missing from the media store; see the manifest)")
    return 0


def _newest_hint(events: object) -> str:
    """On the embedded default, where the newest event is: demo footage keeps its recording time, so an
    empty last-24-hours window usually means --since/--until must cover the footage's dates."""
    query = getattr(events, "query", None)
    newest = query(limit=1) if query else []
    return f" (newest event in the store started {newest[0].started_at})" if newest else ""
