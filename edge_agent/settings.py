"""Settings of the agent process itself (per-camera behaviour lives in contracts.CameraConfig)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.retention import RetentionSettings
from models.catalog import GATEWAY_MODEL


class AgentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gateway_id: str = Field(default="vigia-local", min_length=1, max_length=128, description="IoT thing name")
    site_id: str | None = Field(default=None, max_length=128, description="customer site, carried to alerts")
    data_dir: Path = Field(default=Path("var/edge"), description="outbox, clip segments, memories")
    model_id: str = Field(default=GATEWAY_MODEL, description="catalog id of the gateway detector")
    precision: Literal["FP32", "INT8"] = Field(default="FP32", description="prepared precision to load")
    model_dir: Path | None = Field(default=None, description="explicit IR folder (Greengrass model component)")
    device: str = Field(default="CPU", description="OpenVINO device")
    inference_precision: Literal["f32", "bf16", "f16"] = Field(
        default="f32", description="pinned so the same frame scores the same on every CPU; bf16/f16 only on purpose")
    inference_jobs: int | None = Field(default=None, ge=1, le=16,
                                       description="requests in flight (default: two per inference stream)")
    clip_mode: Literal["segment", "source"] = Field(
        default="segment",
        description="segment: write the event's sampled frames (pre-roll included) as an MJPG AVI; source: for "
        "clip files, hand over the camera's own clip (linked, not re-encoded: no CPU, full quality). "
        "Streams always use segments",
    )
    score_floor: float = Field(default=0.05, ge=0.01, le=0.9, description="lowest score decoded from the network")
    stall_timeout_s: float = Field(default=5.0, ge=0.5, le=300, description="a live source with no frame this long "
                                   "is reconnected")
    open_timeout_s: float = Field(default=10.0, ge=0.5, le=300, description="longest wait for a camera to answer")
    reconnect_min_s: float = Field(default=0.5, ge=0.05, le=60, description="first reconnect delay (then doubles)")
    reconnect_max_s: float = Field(default=30.0, ge=0.1, le=3600, description="longest reconnect delay")
    stable_event_ids: bool = Field(
        default=True, description="derive a clip file's event ids from the clip, so a restart announces nothing "
        "twice; off only to replay the same footage as new camera time (the demo)")
    retention: RetentionSettings = Field(default_factory=RetentionSettings, description="what the gateway keeps")

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.sqlite"

    @property
    def clips_dir(self) -> Path:
        return self.data_dir / "clips"

    @property
    def fp_memory_dir(self) -> Path:
        return self.data_dir / "fp_memory"

    @property
    def stationary_path(self) -> Path:
        return self.data_dir / "stationary.json"

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger.sqlite"
