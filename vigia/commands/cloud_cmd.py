"""`vigia cloud worker | verify`: the cloud side's runtimes from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("cloud", help="run the cloud verifier pipeline (SQS worker or one candidate)")
    csub = parser.add_subparsers(dest="cloud_command", required=True)

    worker = csub.add_parser("worker", help="long-poll the SQS candidate queue until SIGTERM/SIGINT")
    worker.add_argument("--queue-url", help="default VIGIA_QUEUE_URL")
    worker.add_argument("--verifier", help="module:factory of the verify callable (default VIGIA_VERIFIER)")
    worker.set_defaults(func=_worker)

    verify = csub.add_parser("verify", help="verify one candidate JSON file in-process and print the verdict")
    verify.add_argument("--candidate", type=Path, required=True, help="candidate message (JSON file)")
    verify.add_argument("--clip-root", type=Path, help="root of local clips (default VIGIA_CLIP_ROOT)")
    verify.add_argument("--data-dir", type=Path, help="embedded stores (default VIGIA_DATA_DIR)")
    verify.add_argument("--verifier", help="module:factory of the verify callable (default VIGIA_VERIFIER)")
    verify.set_defaults(func=_verify)


def _settings(**overrides: object):
    from cloud.settings import CloudSettings

    return CloudSettings(**{k: v for k, v in overrides.items() if v is not None})


def _worker(args: argparse.Namespace) -> int:
    from cloud.runtime.wiring import build_pipeline
    from cloud.runtime.worker import SqsWorker

    settings = _settings(queue_url=args.queue_url, verifier=args.verifier)
    if not settings.queue_url:
        raise ValueError("the worker needs a queue: --queue-url or VIGIA_QUEUE_URL")
    worker = SqsWorker(build_pipeline(settings), settings.queue_url, wait_s=settings.worker_wait_s,
                       visibility_s=settings.worker_visibility_s, heartbeat_s=settings.worker_heartbeat_s)
    worker.install_signal_handlers()
    print(json.dumps(worker.run()))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from cloud.runtime.inprocess import InProcessCloud

    body = args.candidate.read_text()  # FileNotFoundError → the CLI's clear error
    settings = _settings(store="local", clip_root=args.clip_root, data_dir=args.data_dir, verifier=args.verifier)
    outcome = InProcessCloud(settings).submit_outcome(body)
    if outcome.verdict is None:
        print(json.dumps({"status": outcome.status, "dead_letter": outcome.dead_letter_id}))
        return 1
    print(outcome.verdict.model_dump_json())
    return 0
