"""cloud/Dockerfile cannot be built here (no Docker engine): read it and hold it to the image's rules, and run
its entry point script on both branches."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "cloud" / "Dockerfile"
ENTRYPOINT_SCRIPT = ROOT / "cloud" / "entrypoint.sh"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        keyword, _, args = text.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE)


def only(steps: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for kw, args in steps if kw == keyword]


def test_base_image_is_pinned(steps) -> None:
    [base] = only(steps, "FROM")
    image = base.split()[0]
    assert "@sha256:" in image or re.search(r":\d+(\.\d+)+", image), f"{image}: pin a version or a digest"
    assert not image.endswith(":latest")


def test_models_are_prepared_at_build_time(steps) -> None:
    env = " ".join(only(steps, "ENV"))
    assert "VIGIA_MODELS_DIR=/opt/vigia/models" in env
    runs = only(steps, "RUN")
    assert any("vigia.cli models prepare" in run for run in runs)
    assert any("torch_artifacts(" in run for run in runs)  # the GPU path's export too: no conversion at run time


def test_no_secrets_in_the_image(steps) -> None:
    secret = re.compile(r"(AWS_ACCESS_KEY_ID|AWS_SECRET|SESSION_TOKEN|PASSWORD|PRIVATE_KEY|API_KEY)", re.I)
    for keyword, args in steps:
        if keyword in ("ENV", "ARG", "LABEL"):
            assert not secret.search(args), f"{keyword} {args}: credentials come from the role, not the image"
    assert not secret.search(ENTRYPOINT_SCRIPT.read_text())


def test_runs_as_a_non_root_user(steps) -> None:
    users = only(steps, "USER")
    assert users, "no USER: the container would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_one_image_two_entry_points(steps) -> None:
    [entrypoint] = only(steps, "ENTRYPOINT")
    [cmd] = only(steps, "CMD")
    assert json.loads(entrypoint) == ["/usr/local/bin/vigia-entrypoint"]
    assert any("cloud/entrypoint.sh /usr/local/bin/vigia-entrypoint" in run for run in only(steps, "RUN"))
    [handler_path] = json.loads(cmd)  # the Lambda's default: module.function that exists
    module, _, function = handler_path.rpartition(".")
    assert callable(getattr(importlib.import_module(module), function))


def run_entrypoint(tmp_path: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """The script as the image runs it, with `python` this interpreter and a stand-in Lambda entry point that
    says what it was given."""
    bindir = tmp_path / "bin"
    if not bindir.exists():
        bindir.mkdir()
        python = bindir / "python"  # a wrapper, not a link: a link would lose the virtualenv
        python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        python.chmod(0o755)
    lambda_stub = tmp_path / "lambda-entrypoint.sh"
    lambda_stub.write_text('#!/bin/sh\necho "lambda runtime: $*"\n')
    lambda_stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "LAMBDA_TASK_ROOT": str(ROOT),
           "LAMBDA_ENTRYPOINT": str(lambda_stub), **extra_env}
    return subprocess.run(["sh", str(ENTRYPOINT_SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=60, cwd=tmp_path)


def test_entrypoint_runs_the_worker_cli(tmp_path: Path) -> None:
    result = run_entrypoint(tmp_path, "vigia", "cloud", "worker", "--help")
    assert result.returncode == 0, result.stderr
    assert "--queue-url" in result.stdout


def test_worker_with_a_bad_setting_stops_at_startup_naming_it(tmp_path: Path) -> None:
    result = run_entrypoint(tmp_path, "vigia", "cloud", "worker", "--queue-url", "http://127.0.0.1:9/q",
                            VIGIA_VERIFIER_DEVICE="gpu", VIGIA_DATA_DIR=str(tmp_path / "data"))
    assert result.returncode == 2  # before polling: no message is taken and failed
    assert "vigia: error: VIGIA_VERIFIER_DEVICE: Input should be 'cpu', 'cuda' or 'auto' (got 'gpu')" in \
        result.stderr


def test_entrypoint_hands_a_handler_path_to_the_lambda_runtime(tmp_path: Path) -> None:
    result = run_entrypoint(tmp_path, "cloud.runtime.lambda_handler.handler")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "lambda runtime: cloud.runtime.lambda_handler.handler"
