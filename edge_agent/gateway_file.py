"""The gateway file: which cameras this gateway serves and where each one's video comes from, plus the
starting configuration (the same document as the named shadow's desired state).

    {"sources": {"door": "rtsp://user:pass@10.0.0.5/stream1", "yard": "/var/clips/yard"},
     "defaults": {"threshold": 0.55}, "cameras": {"yard": {"threshold": 0.7}}}

Sources stay on the gateway: they carry camera credentials and never travel in the shadow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contracts import GatewayConfig, validate_camera_id
from contracts.errors import describe_validation_error

MAX_FILE_BYTES = 256 * 1024


class GatewayFileError(ValueError):
    """The gateway file cannot be used; the message names the field and the problem."""


class GatewayFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: dict[str, str] = Field(default_factory=dict, max_length=64,
                                    description="camera id → video file, folder of clips or rtsp/http URL")
    config: GatewayConfig = Field(default_factory=GatewayConfig)

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: dict[str, str]) -> dict[str, str]:
        for camera_id, source in value.items():
            validate_camera_id(camera_id)
            if not source.strip():
                raise ValueError(f"camera {camera_id!r} has an empty source")
        return value


def load_gateway_file(path: Path) -> GatewayFile:
    """Read and validate; every problem is one GatewayFileError naming the file and the field."""
    try:
        if Path(path).stat().st_size > MAX_FILE_BYTES:
            raise GatewayFileError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        text = Path(path).read_text()
        raw: Any = _parse(path, text)
    except OSError as exc:
        raise GatewayFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not isinstance(raw, dict):
        raise GatewayFileError(f"{path}: expected an object at the top")
    sources = raw.pop("sources", {})
    try:
        return GatewayFile(sources=sources, config=GatewayConfig.model_validate(raw))
    except ValidationError as exc:
        raise GatewayFileError(f"{path}: {describe_validation_error(exc)}") from exc


def _parse(path: Path, text: str) -> Any:
    try:
        if Path(path).suffix in (".yaml", ".yml"):
            import yaml  # optional: JSON needs nothing extra

            return yaml.safe_load(text)
        return json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError and yaml.YAMLError's common base for our purpose
        raise GatewayFileError(f"{path}: not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'}: "
                               f"{exc}") from exc
