"""The one place that says where prepared models and downloaded packages live.

`make`, the `vigia` command, the verifier and the tests all call `models_root()`, so a model prepared by one is
found by the others: VIGIA_MODELS_DIR when set; else `.cache/models` of the source checkout this code runs from
(an editable install, `make`); else a per-user cache folder (a wheel installed in site-packages).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "VIGIA_MODELS_DIR"
_CHECKOUT = Path(__file__).resolve().parents[1]


def _is_source_checkout(root: Path) -> bool:
    # A wheel installs `models/` into site-packages, beside no pyproject.toml of ours.
    pyproject = root / "pyproject.toml"
    try:
        return pyproject.is_file() and 'name = "vigia"' in pyproject.read_text(encoding="utf-8")
    except OSError:
        return False


def cache_root(name: str, env_var: str) -> Path:
    """$env_var, else <checkout>/.cache/<name>, else $XDG_CACHE_HOME (or ~/.cache)/vigia/<name>."""
    env = os.environ.get(env_var)
    if env:
        return Path(env).expanduser()
    if _is_source_checkout(_CHECKOUT):
        return _CHECKOUT / ".cache" / name
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vigia" / name


def models_root() -> Path:
    """VIGIA_MODELS_DIR, else <checkout>/.cache/models, else $XDG_CACHE_HOME (or ~/.cache)/vigia/models."""
    return cache_root("models", ENV_VAR)


def model_dir(model_id: str, version: str, precision: str, root: Path | None = None) -> Path:
    return (root or models_root()) / model_id / version / precision
