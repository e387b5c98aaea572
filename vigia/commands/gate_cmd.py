"""`vigia gate`: compare a registered head version with the one in service; exit 0 passed, 1 refused, 2 bad input."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
REGISTRY_HELP = "head version registry (default: VIGIA_REGISTRY_DIR, else .cache/registry of this checkout)"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("gate", help="promote-or-not: a head version against the one in service (JSON + PNG)")
    parser.add_argument("--candidate", help="registry version to judge")
    parser.add_argument("--current", help="version to compare with (default: the one in service, else the "
                        "registry's rules-only baseline)")
    parser.add_argument("--candidate-eval", type=Path, help="evaluation summary JSON instead of the version's "
                        "metrics['eval']")
    parser.add_argument("--current-eval", type=Path, help="evaluation summary JSON for the current side")
    parser.add_argument("--out", type=Path, help="report folder (gate.json + gate.png)")
    parser.add_argument("--set-baseline", type=Path, metavar="FILE",
                        help="store a rules-only evaluation summary as the registry's baseline, then exit")
    parser.add_argument("--registry", type=Path, help=REGISTRY_HELP)
    parser.set_defaults(func=_gate)


def _bad(message: str) -> int:
    log.error("gate: bad input: %s", message)
    print(f"vigia gate: error: {message}", file=sys.stderr)
    return 2


def _stored_eval(entry: Any) -> dict[str, Any]:
    summary = entry.metrics.get("eval")
    if not summary:
        raise ValueError(f"version {entry.version} has no metrics['eval']: pass --candidate-eval/--current-eval")
    return summary


def _gate(args: argparse.Namespace) -> int:
    from models.learned.gate import EvalSummary, gate, load_summary, write_report
    from models.learned.registry import Registry, RegistryError

    registry = Registry(args.registry) if args.registry else Registry.default()
    try:
        if args.set_baseline:
            registry.set_baseline(json.loads(args.set_baseline.read_text()))
            print(f"baseline stored in {registry.path}")
            return 0
        if not args.candidate or not args.out:
            return _bad("--candidate and --out are required (or --set-baseline FILE)")
        entry = registry.get(args.candidate)
        candidate = (load_summary(args.candidate_eval) if args.candidate_eval
                     else EvalSummary.model_validate(_stored_eval(entry)))
        if args.current_eval:
            current = load_summary(args.current_eval)
        elif args.current:
            current = EvalSummary.model_validate(_stored_eval(registry.get(args.current)))
        else:
            serving = registry.in_service()
            if serving is not None and serving.version != entry.version:
                current = EvalSummary.model_validate(_stored_eval(serving))
            elif registry.baseline() is not None:
                current = EvalSummary.model_validate(registry.baseline())
            else:
                return _bad("nothing in service and no baseline: run `vigia gate --set-baseline FILE` with the "
                            "rules-only evaluation summary, or pass --current-eval")
    except (KeyError, ValueError, RegistryError, FileNotFoundError, json.JSONDecodeError) as exc:
        return _bad(exc.args[0] if isinstance(exc, KeyError) else str(exc))

    result = gate(candidate, current)
    report = write_report(result, candidate, current, args.out)
    registry.record_gate(entry.version, result, report)
    verdict = "PASSED" if result.passed else "REFUSED"
    print(f"gate {verdict}: {candidate.label} vs {current.label}")
    for reason in result.reasons:
        print(f"  - {reason}")
    print(f"report: {report} (+ {report.with_suffix('.png').name})")
    return 0 if result.passed else 1
