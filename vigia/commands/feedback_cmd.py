"""`vigia feedback EVENT_ID person|not-person|unsure`: label an event (idempotent), with who and why.

`not-person` on a confirmed event also teaches the camera's false-positive memory (the verifier at once, the
gateway through its shadow). Unknown event, bad label: one stderr line, exit 2. Label stored but the memory
not updated (store or shadow unreachable): exit 1, and the same command again retries.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from cloud.feedback.model import LABELS

    parser = sub.add_parser("feedback", help="label an event: person, not-person or unsure")
    parser.add_argument("event_id", metavar="EVENT_ID")
    parser.add_argument("label", metavar="LABEL", help=" | ".join(LABELS))
    parser.add_argument("--note", help="why (at most 500 characters)")
    parser.add_argument("--by", help="who gives the label (default: the user name)")
    parser.add_argument("--data-dir", type=Path, help="cloud or demo data dir (default VIGIA_DATA_DIR)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from cloud.feedback import LearningFailed, UnknownEvent, parse_label
    from cloud.feedback.wiring import build_feedback, require_store, settings_for_data_dir
    from contracts.errors import describe_validation_error

    try:
        parse_label(args.label)  # before opening any store
        settings = settings_for_data_dir(args.data_dir)
        require_store(settings)
        service = build_feedback(settings)
        record = service.record(args.event_id, args.label, by=args.by or _user(), note=args.note, source="cli")
    except (UnknownEvent, ValueError) as exc:
        message = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
        print(f"vigia feedback: error: {message}", file=sys.stderr)
        return 2
    except LearningFailed as exc:
        print(f"vigia feedback: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"event_id": record.event_id, "camera_id": record.camera_id, "decision": record.decision,
                      "label": record.label, "labeled_at": record.labeled_at}))
    return 0


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
