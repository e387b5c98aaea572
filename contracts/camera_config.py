"""Per-camera settings: what the named shadow carries and what the agent runs with.

Coordinates of zones and masks are fractions of the frame (0..1), so one config fits any resolution.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.ids import validate_camera_id

Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]
Polygon = Annotated[list[Point], Field(min_length=3, max_length=64)]

_STRICT = ConfigDict(extra="forbid", validate_assignment=True)


class MotionSettings(BaseModel):
    """The motion gate: no detection on frames where nothing moved."""

    model_config = _STRICT

    enabled: bool = Field(default=True, description="skip the detector on frames without motion")
    sensitivity: int = Field(
        default=20, ge=4, le=120, description="grey-level change (0-255) that counts as motion"
    )
    min_area: float = Field(
        default=0.0005, ge=0, le=0.5, description="moving fraction of the frame needed to wake the detector"
    )
    keyframe_interval_s: float = Field(
        default=3.0,
        ge=0.5,
        le=600,
        description="run the detector at least this often anyway, so a person who stands still is kept",
    )
    masks: list[Polygon] = Field(
        default_factory=list, max_length=32, description="regions whose motion is ignored (trees, a road)"
    )


class FilterSettings(BaseModel):
    """Per-detection filters; a box is judged by its bottom-centre point (where the feet are)."""

    model_config = _STRICT

    min_area: float = Field(default=0.00005, ge=0, le=1, description="smallest box, fraction of the frame")
    max_area: float = Field(default=0.9, gt=0, le=1, description="largest box, fraction of the frame")
    min_aspect: float = Field(default=0.6, gt=0, le=20, description="smallest height/width ratio")
    max_aspect: float = Field(default=6.0, gt=0, le=20, description="largest height/width ratio")
    zones: list[Polygon] = Field(
        default_factory=list, max_length=32, description="inclusion zones; empty means the whole frame"
    )
    masks: list[Polygon] = Field(default_factory=list, max_length=32, description="exclusion masks")

    @model_validator(mode="after")
    def _ordered(self) -> FilterSettings:
        if self.min_area >= self.max_area:
            raise ValueError(f"min_area ({self.min_area}) must be below max_area ({self.max_area})")
        if self.min_aspect >= self.max_aspect:
            raise ValueError(f"min_aspect ({self.min_aspect}) must be below max_aspect ({self.max_aspect})")
        return self


class TrackingSettings(BaseModel):
    """When a track becomes a candidate: its score over the track, and how long it lived."""

    model_config = _STRICT

    min_hits: int = Field(default=2, ge=1, le=100, description="detections a track needs")
    min_duration_s: float = Field(default=0.3, ge=0, le=60, description="first to last hit")
    max_gap_s: float = Field(default=2.0, gt=0, le=60, description="a track unseen this long is closed")
    glimpse_score: float | None = Field(
        default=0.65, ge=0.05, le=1.0,
        description="a track too short for min_hits / min_duration_s still becomes a candidate when its best "
        "detection reaches this score: a person seen clearly on one frame, or a moving camera that breaks the "
        "track, goes to the verifier instead of being lost; null: off",
    )
    match_iou: float = Field(default=0.2, gt=0, lt=1, description="IoU to continue a track")
    score_top_k: int = Field(default=3, ge=1, le=50, description="track score = mean of its k best scores")
    stationary_px: float = Field(
        default=0.25,
        ge=0,
        le=10,
        description="a track moving less than this many box heights is stationary; once announced, "
        "the same stationary object is not announced again",
    )
    stationary_ttl_s: float = Field(
        default=3600, ge=0, le=7 * 86400, description="how long an announced stationary object is remembered"
    )
    event_gap_s: float = Field(default=3.0, ge=0, le=120, description="tracks this close in time share an event")
    max_event_s: float = Field(default=60.0, ge=1, le=600, description="longest event before a new one starts")

    @model_validator(mode="after")
    def _consistent(self) -> TrackingSettings:
        if self.min_duration_s >= self.max_event_s:
            raise ValueError(f"min_duration_s ({self.min_duration_s}) must be below max_event_s ({self.max_event_s})")
        if self.event_gap_s >= self.max_event_s:
            raise ValueError(f"event_gap_s ({self.event_gap_s}) must be below max_event_s ({self.max_event_s})")
        return self


class FpMemoryRef(BaseModel):
    """Points at the camera's learned false-positive memory, which is too large for a shadow."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    uri: str | None = Field(default=None, max_length=1024, description="where to fetch it (s3:// or local)")


class CameraConfig(BaseModel):
    """Everything the agent needs to know about one camera."""

    model_config = _STRICT

    enabled: bool = Field(default=True, description="process this camera at all")
    detect_threshold: float = Field(
        default=0.3, ge=0.05, le=0.99, description="per-frame score a detection needs to enter tracking"
    )
    threshold: float = Field(
        default=0.5, ge=0.05, le=0.99, description="score over the track needed to send a candidate"
    )
    still_threshold: float = Field(
        default=0.3, ge=0.05, le=0.99,
        description="score a single still image needs (no track exists; the verifier judges what passes)"
    )
    sample_fps: float = Field(default=5.0, gt=0, le=30, description="frames per second analysed")
    tiling: Literal["off", "auto", "always"] = Field(
        default="auto",
        description="look again at tiles for small, far people: 'auto' zooms on small motion in clip frames, "
        "and looks at a still in 2x2 tiles, whenever the full frame finds nobody; 'always' tiles every frame",
    )
    model_version: str | None = Field(default=None, max_length=64, description="pin a model version")
    motion: MotionSettings = Field(default_factory=MotionSettings)
    filters: FilterSettings = Field(default_factory=FilterSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    fp_memory: FpMemoryRef | None = None
    fp_match_threshold: float = Field(
        default=0.8, ge=0.3, le=1.0, description="appearance similarity at which a detection matches a known FP"
    )

    @model_validator(mode="after")
    def _thresholds(self) -> CameraConfig:
        if self.detect_threshold > self.threshold:
            raise ValueError(
                f"detect_threshold ({self.detect_threshold}) must not exceed threshold ({self.threshold})"
            )
        period = 1.0 / self.sample_fps
        if self.tracking.max_gap_s < period:
            raise ValueError(f"tracking.max_gap_s ({self.tracking.max_gap_s}) is shorter than one sampled frame "
                             f"({period:.3f}s at sample_fps {self.sample_fps}): every track would break")
        # A still object is looked at once a keyframe; its 'already announced' memory must outlive the wait
        # between two looks, or it is announced again at every keyframe.
        ttl = self.tracking.stationary_ttl_s
        if 0 < ttl < self.motion.keyframe_interval_s:
            raise ValueError(f"tracking.stationary_ttl_s ({ttl}) must be at least motion.keyframe_interval_s "
                             f"({self.motion.keyframe_interval_s})")
        return self


class GatewayConfig(BaseModel):
    """The whole configuration of one gateway: the `desired`/`reported` body of its named shadow."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    defaults: CameraConfig = Field(default_factory=CameraConfig, description="applies to unlisted cameras")
    cameras: dict[str, CameraConfig] = Field(default_factory=dict, max_length=64)

    @field_validator("cameras")
    @classmethod
    def _camera_ids(cls, value: dict[str, CameraConfig]) -> dict[str, CameraConfig]:
        for cam in value:
            validate_camera_id(cam)
        return value

    def for_camera(self, camera_id: str) -> CameraConfig:
        return self.cameras.get(camera_id, self.defaults)
