"""Read the CloudFormation stack (template defaults, overridden by a parameters file) into a Usage, so that
the estimate describes the deployed system: retention, rejected-media expiry, the verifier's memory, the
events table's GSIs, the alarms and dashboards."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from cloud.cost.model import Usage

TEMPLATE = Path(__file__).resolve().parents[1] / "infra" / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation's short tags (!Ref, !Sub, !GetAtt...) as {"Fn": value}."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {("Ref" if suffix == "Ref" else f"Fn::{suffix}"): value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(Path(path).read_text(), _CfnLoader)  # a SafeLoader subclass


def read_parameters(path: Path) -> dict[str, str]:
    """A parameters file: the CLI's [{"ParameterKey", "ParameterValue"}] list or a plain {key: value}."""
    try:
        doc = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from exc
    if isinstance(doc, list):
        try:
            return {str(p["ParameterKey"]): str(p["ParameterValue"]) for p in doc}
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}: each entry needs ParameterKey and ParameterValue") from exc
    if isinstance(doc, dict):
        return {str(k): str(v) for k, v in doc.items()}
    raise ValueError(f"{path}: expected a list of ParameterKey/ParameterValue or an object")


def _resolve(value: Any, params: dict[str, str]) -> Any:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return params.get(value["Ref"])
    return value


def alarm_metric_count(resource: dict[str, Any]) -> float:
    """CloudWatch bills an anomaly-detection alarm as 3 standard alarm metrics, others as 1 per metric."""
    props = resource.get("Properties", {})
    metrics = props.get("Metrics") or []
    if any("ANOMALY_DETECTION_BAND" in str(m.get("Expression", "")) for m in metrics):
        return 3.0
    return 1.0


def verifier_function(resources: dict[str, Any]) -> str:
    """The Lambda fed by the SQS event source (the verifier), not the scheduled ones (sampler, drift)."""
    for res in resources.values():
        if res.get("Type") == "AWS::Lambda::EventSourceMapping":
            target = (res.get("Properties") or {}).get("FunctionName")
            if isinstance(target, dict) and "Ref" in target:
                return str(target["Ref"])
    return "VerifierFunction"


def stack_usage(template: Path = TEMPLATE, parameters: Path | None = None, base: Usage | None = None) -> Usage:
    doc = load_template(template)
    params = {k: str(v.get("Default")) for k, v in (doc.get("Parameters") or {}).items() if "Default" in v}
    if parameters is not None:
        unknown = set(read_parameters(parameters)) - set(doc.get("Parameters") or {})
        if unknown:
            raise ValueError(f"{parameters}: not parameters of the stack: {', '.join(sorted(unknown))}")
        params.update(read_parameters(parameters))
    origin = f"stack {'parameters ' + Path(parameters).name if parameters else 'template defaults'}"
    resources = doc.get("Resources") or {}
    values: dict[str, Any] = {}
    if params.get("EventTtlDays") not in (None, "None"):
        values["retention_days"] = float(params["EventTtlDays"])
    if params.get("RejectedMediaDays") not in (None, "None"):
        values["rejected_media_days"] = float(params["RejectedMediaDays"])
    verifier = resources.get(verifier_function(resources)) or {}
    memory = _resolve((verifier.get("Properties") or {}).get("MemorySize"), params)
    if memory is not None:
        values["lambda_memory_mb"] = float(memory)
    for res in resources.values():
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::DynamoDB::Table":
            values["gsi_count"] = len(props.get("GlobalSecondaryIndexes") or [])
    values["alarm_metrics"] = sum(alarm_metric_count(r) for r in resources.values()
                                  if r.get("Type") == "AWS::CloudWatch::Alarm")
    values["dashboards"] = sum(1 for r in resources.values() if r.get("Type") == "AWS::CloudWatch::Dashboard")
    base = base or Usage()
    return replace(base, **values, sources={**base.sources, **dict.fromkeys(values, origin)})
