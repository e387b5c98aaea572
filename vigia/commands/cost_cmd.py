"""`vigia cost`: the monthly AWS cost per camera and for the fleet, edge-filtered beside every clip to the
cloud, from the dated price file (cloud/cost/prices-*.json) and usage. Retention, the verifier's memory,
the table's indexes, alarms and dashboards come from the stack (template defaults, or --stack-params), so
the estimate describes what is deployed; the command line overrides them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cost", help="monthly AWS cost per camera and fleet: edge-filtered vs every clip")
    p.add_argument("--cameras", type=int, help="cameras in the fleet (default 10)")
    p.add_argument("--clips-per-day", type=float, help="one-minute clips a camera records a day (default 200)")
    p.add_argument("--candidate-rate", type=float, help="share of clips the gateway sends up (default 0.05)")
    p.add_argument("--confirm-rate", type=float, help="share of verified clips confirmed (default 0.5)")
    p.add_argument("--verifier-s", type=float, help="verifier seconds per clip (default 2)")
    p.add_argument("--clip-mb", type=float, help="size of one clip in MB (default 4)")
    p.add_argument("--retention-days", type=float, help="event and media retention (default: the stack's EventTtlDays)")
    p.add_argument("--runtime", choices=["lambda", "ecs-gpu"], help="verifier runtime (default lambda)")
    p.add_argument("--stack-params", type=Path, help="CloudFormation parameters file (JSON) of the deployment")
    p.add_argument("--template", type=Path, help="CloudFormation template (default cloud/infra/template.yaml)")
    p.add_argument("--prices", type=Path, help="price file (default: the newest cloud/cost/prices-*.json)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cost)


def _cost(args: argparse.Namespace) -> int:
    from cloud.cost import compare, load_prices, stack_usage
    from cloud.cost.model import with_overrides
    from cloud.cost.stack import TEMPLATE

    usage = stack_usage(args.template or TEMPLATE, args.stack_params)
    usage = with_overrides(usage, cameras=args.cameras, clips_per_day=args.clips_per_day,
                           candidate_rate=args.candidate_rate, confirm_rate=args.confirm_rate,
                           verifier_s=args.verifier_s, clip_mb=args.clip_mb, retention_days=args.retention_days,
                           runtime=args.runtime).validate()
    result = compare(usage, load_prices(args.prices))
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print_comparison(result)
    return 0


def print_comparison(result: dict[str, Any], out=None) -> None:
    out = out or sys.stdout
    edge, every = result["edge"], result["all"]
    cams = result["usage"]["cameras"]
    services = list(dict.fromkeys([*edge["services"], *every["services"]]))
    headers = ["service", "edge-filtered fleet $", "every clip fleet $", "edge $/camera", "every clip $/camera"]
    rows = [[s, f"{edge['services'].get(s, 0):.2f}", f"{every['services'].get(s, 0):.2f}",
             f"{edge['services'].get(s, 0) / cams:.3f}", f"{every['services'].get(s, 0) / cams:.3f}"]
            for s in services]
    rows.append(["total", f"{edge['fleet_usd']:.2f}", f"{every['fleet_usd']:.2f}",
                 f"{edge['per_camera_usd']:.3f}", f"{every['per_camera_usd']:.3f}"])
    u = result["usage"]
    title = (f"monthly AWS cost, {cams} cameras on {result['gateways']} gateways, {u['clips_per_day']:g} clips/day, "
             f"candidate rate {u['candidate_rate']:g}, runtime {u['runtime']}")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title, file=out)
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        for r in [headers, *rows]:
            print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))),
                  file=out)
    else:
        table = Table(title=title)
        for i, h in enumerate(headers):
            table.add_column(h, justify="right" if i else "left")
        for r in rows:
            table.add_row(*r)
        Console(file=out, width=None if getattr(out, "isatty", lambda: False)() else 160).print(table)
    print(f"clips sent up a month: {edge['clips_sent']:,.0f} edge-filtered, {every['clips_sent']:,.0f} every clip; "
          f"saving {result['saving_usd']:.2f} $/month", file=out)
    prices = result["prices"]
    print(f"prices: {prices['file']} ({prices['region']}, compiled {prices['compiled']}); "
          f"{len(prices['unverified'])} price(s) not verified against the live price pages", file=out)
    stack = sorted({v for v in result["sources"].values()})
    if stack:
        print("from: " + "; ".join(f"{src}: " + ", ".join(k for k, v in result["sources"].items() if v == src)
                                   for src in stack), file=out)
