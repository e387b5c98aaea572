"""What the agent asks for a camera's settings; the shadow-backed ConfigStore satisfies the same protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from contracts import CameraConfig, GatewayConfig


class ConfigProvider(Protocol):
    @property
    def version(self) -> int | None: ...

    def for_camera(self, camera_id: str) -> CameraConfig: ...


class StaticConfig:
    """A fixed GatewayConfig (from a file or defaults): the embedded default and evaluation use it."""

    def __init__(self, config: GatewayConfig | None = None) -> None:
        self.config = config or GatewayConfig()

    @property
    def version(self) -> int | None:
        return None

    def for_camera(self, camera_id: str) -> CameraConfig:
        return self.config.for_camera(camera_id)

    @classmethod
    def from_file(cls, path: Path) -> StaticConfig:
        """Load and validate; a bad file is refused with the field's name (pydantic's error says which)."""
        text = Path(path).read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml  # optional: JSON needs nothing extra

            return cls(GatewayConfig.model_validate(yaml.safe_load(text)))
        return cls(GatewayConfig.model_validate_json(text))
