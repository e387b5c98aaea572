"""`vigia` — one console script, a subcommand per job. Heavy imports happen inside each subcommand."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Each module has `register(subparsers)`; keep this list in the order `vigia --help` shows them.
COMMAND_MODULES = (
    "vigia.commands.models_cmd",
    "vigia.commands.edge_cmd",
    "vigia.commands.eval_cmd",
    "vigia.commands.dataset_cmd",
    "vigia.commands.train_cmd",
    "vigia.commands.gate_cmd",
    "vigia.commands.demo_cmd",
    "vigia.commands.cloud_cmd",
    "vigia.commands.config_cmd",
    "vigia.commands.greengrass_cmd",
    "vigia.commands.console_cmd",
    "vigia.commands.events_cmd",
    "vigia.commands.feedback_cmd",
    "vigia.commands.sample_cmd",
    "vigia.commands.tune_cmd",
    "vigia.commands.drift_cmd",
    "vigia.commands.stats_cmd",
    "vigia.commands.cost_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigia", description="Person alerts without recurring false alarms.")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a command module not written yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from vigia.logs import configure_logging

    configure_logging(args.log_level)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, ValueError) as exc:
        logging.getLogger("vigia").error("%s", exc)
        print(f"vigia: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
