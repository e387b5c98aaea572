"""Settings of the cloud verifier: every threshold it decides with, with its bounds and why it exists."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.catalog import VERIFIER_MODELS


class VerifierSettings(BaseModel):
    """How hard the verifier looks and what it needs to see before it confirms a person."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # -- what runs ---------------------------------------------------------------------------------
    models: tuple[str, ...] = Field(
        default=VERIFIER_MODELS,
        min_length=1,
        max_length=4,
        description="prepared model ids of the ensemble (catalog ids); two different architectures cross-check",
    )
    precision: Literal["FP32", "FP16", "INT8"] = Field(default="FP32", description="prepared precision to load")
    inference_precision: Literal["f32", "bf16", "f16"] = Field(
        default="f32",
        description="arithmetic the networks run in: f32 gives the same scores on every host (the decision "
        "thresholds were set in f32); bf16 (CPU with AMX/AVX512_BF16) or f16 (CPU, or fp16 autocast on CUDA) "
        "only when chosen, and then re-check the thresholds",
    )
    device: str = Field(
        default="CPU", min_length=1, max_length=32,
        description="'CPU' (OpenVINO), 'cuda' (the same graph in PyTorch on a GPU) or 'auto' (CUDA when present)",
    )
    threads: int | None = Field(default=None, ge=1, le=256, description="inference threads; None = OpenVINO's choice")
    tile_grids: tuple[int, ...] = Field(
        default=(2, 3),
        max_length=3,
        description="besides the full frame, look at grid×grid overlapping tiles (each grid is one more 'scale'); "
        "small, far people only reach the 300 px networks at a size they can see through tiles",
    )
    escalate_tiles: bool = Field(
        default=True,
        description="look at the full frame and the first tile grid first; run the finer grids only when that "
        "does not already confirm, and only on frames without a clear person (same verdicts, less compute)",
    )
    score_floor: float = Field(
        default=0.1, ge=0.01, le=0.9, description="detections below this score are not looked at at all"
    )
    group_iou: float = Field(
        default=0.3, gt=0, lt=1, description="IoU at which detections of different models/scales are the same object"
    )

    # -- which frames ------------------------------------------------------------------------------
    max_frames: int = Field(default=8, ge=1, le=64, description="frames of the segment examined (best + evenly spaced)")
    window_margin_s: float = Field(
        default=1.0, ge=0, le=30,
        description="how far outside the gateway's track spans frames may be taken when the spans hold fewer "
        "than min_span_frames frames (and around the event window when the candidate has no tracks)",
    )
    min_span_frames: int = Field(
        default=5, ge=1, le=64,
        description="frames are examined inside the union of the gateway's track spans; when those hold fewer "
        "frames than this, the nearest frames within window_margin_s are added",
    )

    # -- box sanity --------------------------------------------------------------------------------
    min_box_height_px: float = Field(default=6.0, ge=0, le=200, description="boxes shorter than this are noise")
    min_aspect: float = Field(default=0.2, gt=0, le=20, description="smallest height/width of a person box")
    max_aspect: float = Field(default=10.0, gt=0, le=50, description="largest height/width of a person box")

    # -- evidence per object (one frame) -----------------------------------------------------------
    cross_check_min: float = Field(
        default=0.3,
        ge=0.05,
        le=0.99,
        description="score each model needs at the same place for the pair to count as agreement",
    )
    agree_iou: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="IoU the two models' boxes need to count as agreement: the same object, the same extent "
        "(looser overlaps are grouped, but a flag and a half-flag are not two opinions of one person)",
    )
    single_model_weight: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="calibration of a score that only one architecture gives: multiplies it (agreement uses the "
        "geometric mean instead). 0.6 means one model alone needs 0.84 to reach the default confirm level",
    )
    min_scales: int = Field(
        default=2,
        ge=1,
        le=4,
        description="a single-model detection counts at full weight only when seen at this many scales "
        "(full frame, each tile grid) with at least cross_check_min",
    )
    unconfirmed_scale_weight: float = Field(
        default=0.8, ge=0, le=1, description="extra factor for a single-model detection seen at fewer scales"
    )
    tile_only_max_height: float = Field(
        default=0.15,
        gt=0,
        le=1,
        description="a single-model box taller than this fraction of the frame that only tiles find (not the full "
        "frame) is a zoom artefact until shown otherwise: the 300 px full-frame view already sees people taller "
        "than ~1/8 of the frame (MODELS.md: ~90 px in 720p)",
    )
    confirm_threshold: float = Field(
        default=0.5, ge=0.05, le=0.99, description="evidence at which an object on one frame is a person"
    )
    uncertain_threshold: float = Field(
        default=0.3, ge=0.01, le=0.99, description="evidence below this is nothing; between is worth a human look"
    )

    # -- temporal consistency (several frames) -----------------------------------------------------
    min_person_frames: int = Field(
        default=2, ge=1, le=64, description="frames that must show a person near the track (clips; a still needs 1)"
    )
    min_person_fraction: float = Field(
        default=0.4, ge=0, le=1, description="fraction of the examined frames that must show a person"
    )
    maybe_frame_weight: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="a frame where the object is only 'maybe' a person (between the two thresholds) counts this "
        "much towards the frames needed; small far people often hover there. At least min_person_frames "
        "frames (1 for a still) must still be clear persons",
    )
    track_gate: bool = Field(default=True, description="only count persons near where the gateway's track was")
    track_margin: float = Field(
        default=1.0, ge=0, le=20, description="how far from the gateway's box a person may be, in box heights"
    )
    track_speed: float = Field(
        default=1.5,
        ge=0,
        le=20,
        description="how far a person may have walked from the gateway's box, in box heights per second",
    )

    # -- consistent walker: one architecture, corroborated by motion -------------------------------
    walker_rule: bool = Field(
        default=True,
        description="count a person only one model sees when it walks consistently over several frames "
        "(small far people that the person-only SSDLite barely sees)",
    )
    walker_min_frames: int = Field(
        default=3, ge=3, le=64, description="examined frames on which the one model must find the walker"
    )
    walker_min_displacement: float = Field(
        default=1.0, ge=0.3, le=20, description="net centre travel over those frames, in box heights"
    )
    walker_min_straightness: float = Field(
        default=0.6, gt=0, le=1,
        description="net travel / path length: roughly monotonic, not jitter or a box hopping between objects",
    )
    walker_max_speed: float = Field(
        default=5.0, gt=0, le=50,
        description="fastest plausible motion, box heights per second: a run, or a person in a boat or on a bike "
        "(the gateway's own tracker already linked the boxes)"
    )
    walker_max_size_ratio: float = Field(
        default=1.5, ge=1, le=5,
        description="every box height over the walk within this factor of their median: one object, not two"
    )
    walker_min_score: float = Field(
        default=0.45, ge=0.05, le=0.99,
        description="the model's mean score over the walker's frames (its boxes >= cross_check_min each)"
    )

    # -- learned false positives -------------------------------------------------------------------
    fp_match_threshold: float = Field(
        default=0.8, ge=0.3, le=1.0, description="appearance similarity at which a box repeats a remembered FP"
    )

    @field_validator("tile_grids")
    @classmethod
    def _grids(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for grid in value:
            if not 2 <= grid <= 6:
                raise ValueError(f"tile grid {grid} is outside 2..6")
        if len(set(value)) != len(value):
            raise ValueError(f"tile_grids {value} repeats a grid")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> VerifierSettings:
        if self.uncertain_threshold >= self.confirm_threshold:
            raise ValueError(
                f"uncertain_threshold ({self.uncertain_threshold}) must be below confirm_threshold "
                f"({self.confirm_threshold})"
            )
        if self.min_aspect >= self.max_aspect:
            raise ValueError(f"min_aspect ({self.min_aspect}) must be below max_aspect ({self.max_aspect})")
        if self.min_scales > 1 + len(self.tile_grids):
            raise ValueError(
                f"min_scales ({self.min_scales}) exceeds the scales looked at (1 + {len(self.tile_grids)} tile grids)"
            )
        return self
