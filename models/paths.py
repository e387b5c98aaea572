"""Where prepared models and downloaded packages live (override with VIGIA_MODELS_DIR)."""

from __future__ import annotations

import os
from pathlib import Path


def models_root() -> Path:
    env = os.environ.get("VIGIA_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "vigia" / "models"


def model_dir(model_id: str, version: str, precision: str, root: Path | None = None) -> Path:
    return (root or models_root()) / model_id / version / precision
