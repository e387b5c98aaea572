"""`vigia demo`: gateway and verifier in one process on the embedded default, over real footage."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="gateway + cloud verifier end to end, no AWS account or broker")
    parser.add_argument("--source", action="append",
                        help="video file or folder of clips (default: Debian opencv-doc vtest.avi and tree.avi)")
    parser.add_argument("--data-dir", type=Path, default=Path("var/demo"),
                        help="where clips and records go: a new or empty folder, or one an earlier demo made "
                             "(a later run adds to it; nothing is deleted)")
    parser.add_argument("--config", type=Path, help="GatewayConfig JSON for the gateway")
    parser.set_defaults(func=_run)


def default_sources(cache: Path) -> list[str]:
    from models.sample_media import fetch_opencv_doc, opencv_doc_dir

    folder = opencv_doc_dir()
    if folder is None:
        print("fetching Debian's opencv-doc sample clips (apt-get download, no root needed) ...", flush=True)
        folder = fetch_opencv_doc(cache)
    return [str(folder / "vtest.avi"), str(folder / "tree.avi")]


def _run(args: argparse.Namespace) -> int:
    from vigia.demo import run_demo
    from vigia.demo_store import DemoDataDir

    DemoDataDir.claim(args.data_dir)  # refuse someone else's folder before fetching footage or loading models
    sources = args.source or default_sources(Path(".cache"))
    return run_demo(sources, args.data_dir, args.config)
