"""`vigia greengrass package | deploy`: the model and agent components, and their rollout."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("greengrass", help="package and deploy the Greengrass components")
    gsub = parser.add_subparsers(dest="greengrass_command", required=True)

    pkg = gsub.add_parser("package", help="zip the prepared model, build the agent wheel, write recipes")
    pkg.add_argument("--out", type=Path, default=Path("greengrass-build"), help="output dir (GDK layout)")
    pkg.add_argument("--model", help="model id (default: the catalog's gateway model)")
    pkg.add_argument("--precision", choices=["FP32", "INT8"], default="FP32")
    pkg.add_argument("--models-root", type=Path, help="prepared models dir (default VIGIA_MODELS_DIR)")
    pkg.add_argument("--model-dir", type=Path, help="a prepared model folder, instead of --model")
    pkg.add_argument("--agent-version", default="0.1.0", help="agent component version (semver)")
    pkg.add_argument("--model-version", default="1.0.0", help="model component version (semver)")
    pkg.add_argument("--agent-wheel", type=Path, help="prebuilt vigia wheel (default: build one)")
    pkg.add_argument("--bucket", default="{bucket}", help="artifact bucket for the URIs (deploy fills it)")
    pkg.set_defaults(func=_package)

    dep = gsub.add_parser("deploy", help="upload artifacts, create component versions, deploy to a group")
    dep.add_argument("--out", type=Path, default=Path("greengrass-build"), help="what `package` wrote")
    dep.add_argument("--bucket", required=True, help="S3 bucket for component artifacts")
    dep.add_argument("--target-arn", required=True, help="arn:aws:iot:REGION:ACCOUNT:thinggroup/NAME")
    dep.add_argument("--name", default="vigia", help="deployment name")
    dep.add_argument("--shadow-manager-version", default="2.3.9")
    dep.add_argument("--abort-percent", type=float, default=10.0, help="cancel the rollout above this failure %%")
    dep.add_argument("--agent-config", help="JSON merged into the agent component's configuration")
    dep.add_argument("--region")
    dep.set_defaults(func=_deploy)


def _package(args: argparse.Namespace) -> int:
    from greengrass.package import package

    model_dir = args.model_dir
    if model_dir is None:
        from models.catalog import GATEWAY_MODEL
        from models.prepare import find_prepared

        model_dir = find_prepared(args.model or GATEWAY_MODEL, args.precision, args.models_root)
    built = package(model_dir, args.out, args.agent_version, args.model_version, bucket=args.bucket,
                    agent_wheel=args.agent_wheel)
    for comp in built:
        print(json.dumps({"component": comp.name, "version": comp.version, "recipe": str(comp.recipe_path),
                          "artifact": str(comp.artifact_path), "sha256": comp.sha256_hex}))
    return 0


def _deploy(args: argparse.Namespace) -> int:
    import boto3

    from greengrass.deploy import DeployOptions, deploy

    options = DeployOptions(
        bucket=args.bucket, target_arn=args.target_arn, deployment_name=args.name,
        shadow_manager_version=args.shadow_manager_version, abort_failure_percent=args.abort_percent,
        agent_configuration=json.loads(args.agent_config) if args.agent_config else None,
    )
    result = deploy(boto3.client("greengrassv2", region_name=args.region),
                    boto3.client("s3", region_name=args.region), args.out, options)
    print(json.dumps(result, default=str))
    return 0
