"""`vigia console`: the review console (a web page over the HTTP API) on the demo's data dir or, with
VIGIA_STORE=aws, on DynamoDB/S3 behind a bearer token (VIGIA_API_TOKEN)."""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("console", help="review events in a browser: snapshots, clips, verdicts, labels")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the demo's data dir (default var/demo; ignored with VIGIA_STORE=aws)")
    parser.add_argument("--port", type=int, default=8600, help="TCP port (0: any free one); default 8600")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; any other needs VIGIA_API_TOKEN)")
    parser.add_argument("--review-root", default=None,
                        help="review sets: a folder or s3://bucket[/prefix] (default: the data dir's review/ "
                             "folder, or VIGIA_REVIEW_BUCKET in AWS mode)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from cloud.api import build_console
    from cloud.feedback.wiring import settings_for_data_dir

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port {args.port} is not a TCP port (0-65535)")
    aws = os.environ.get("VIGIA_STORE") == "aws"
    data_dir = None if aws else (args.data_dir or Path("var/demo"))
    settings = settings_for_data_dir(data_dir)
    token = os.environ.get("VIGIA_API_TOKEN") or None
    cache = Path(tempfile.mkdtemp(prefix="vigia-console-"))  # playable MP4s; gone when the console stops
    try:
        try:
            server = build_console(settings, cache_dir=cache, host=args.host, port=args.port, token=token,
                                   review_root=args.review_root)
        except OSError as exc:  # port taken, address not ours: a clear one-line error, exit 2
            if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
                raise
            raise ValueError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
        # SIGTERM stops it like Ctrl-C does (shutdown must come from another thread than serve_forever)
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
        where = "AWS (DynamoDB/S3), token required" if settings.store == "aws" else str(settings.data_dir)
        print(f"vigia console on {server.url}/ over {where}; Ctrl-C to stop", flush=True)
        try:
            server.serve_forever(poll_interval=0.5)
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return 0
