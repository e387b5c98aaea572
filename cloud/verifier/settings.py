"""Settings of the cloud verifier: every threshold it decides with, with its bounds and why it exists.

`VerifierEnv` reads what a deployment chooses (VIGIA_VERIFIER_*: device, frames, tiles, models and their
versions, precision, false-positive memory source) from the environment, the same way for the Lambda and the
ECS worker; `VerifierEnv.verifier_settings()` turns it into the VerifierSettings the verifier runs with.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from models.catalog import CATALOG, VERIFIER_MODELS

log = logging.getLogger(__name__)
ENV_PREFIX = "VIGIA_VERIFIER_"


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

    # -- the learned stage (models/learned; trained by `vigia train`) ------------------------------
    learned_floor: float = Field(
        default=0.15, ge=0.0, le=0.99,
        description="hypotheses with rule evidence below this are not shown to the learned head (and count as "
        "nothing when it judges); the dataset builder mines at the same floor",
    )
    learned_person: float = Field(
        default=0.5, gt=0, lt=1, description="judge mode: P(person) at which a hypothesis is a person")
    learned_maybe: float = Field(
        default=0.3, gt=0, lt=1, description="judge mode: P(person) from which a hypothesis is 'maybe' a person")
    learned_promote: float = Field(
        default=0.9, gt=0, le=1,
        description="veto mode: P(person) at which a hypothesis the rules hesitate over is a person (1 = never)")
    learned_mode: Literal["judge", "veto"] = Field(
        default="veto",
        description="judge: the head's P(person) alone gives each hypothesis its tier, and the walker rule is off; "
        "veto: the rules' tiers stand (walker included) but the head removes what it finds unlike a person "
        "(P < learned_veto) and promotes what it is sure of (P >= learned_promote)",
    )
    learned_veto: float = Field(
        default=0.3, ge=0, lt=1, description="veto mode: P(person) below which a hypothesis is not a person")

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
        if self.learned_maybe >= self.learned_person:
            raise ValueError(f"learned_maybe ({self.learned_maybe}) must be below learned_person "
                             f"({self.learned_person})")
        if self.min_aspect >= self.max_aspect:
            raise ValueError(f"min_aspect ({self.min_aspect}) must be below max_aspect ({self.max_aspect})")
        if self.min_scales > 1 + len(self.tile_grids):
            raise ValueError(
                f"min_scales ({self.min_scales}) exceeds the scales looked at (1 + {len(self.tile_grids)} tile grids)"
            )
        return self


class VerifierConfigError(ValueError):
    """The verifier's configuration cannot run here: raised at startup, naming the variable to fix."""


def _list_from_env(value: Any) -> Any:
    """A list variable as JSON (`[2, 3]`) or comma-separated (`2,3`); empty means an empty list."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_ensemble(text: str) -> tuple[str, ...]:
    """`id,id,...` as catalog ids of an ensemble; ValueError naming what is unknown."""
    models = tuple(_list_from_env(text))
    unknown = [m for m in models if m not in CATALOG]
    if not models or unknown:
        raise ValueError(f"models {text!r}: {'unknown ' + ', '.join(unknown) if unknown else 'none named'} "
                         f"(the catalog holds {', '.join(sorted(CATALOG))})")
    return models


def _mapping_from_env(value: Any) -> Any:
    """`{"id": "1.0.0"}` (JSON) or `id=1.0.0,other=1.0.0`."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("{"):
        return json.loads(text)
    pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"expected model_id=version pairs separated by commas, got {value!r}")
    return {k.strip(): v.strip() for k, v in pairs}


class VerifierEnv(BaseSettings):
    """What a deployment chooses for the verifier, from VIGIA_VERIFIER_* (unset: VerifierSettings' default)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    device: Literal["cpu", "cuda", "auto"] = Field(
        default="cpu",
        description="cpu: OpenVINO; cuda: the same graphs in PyTorch on the GPU (startup fails without one); "
        "auto: CUDA when torch sees a GPU, else CPU (logged)",
    )
    max_frames: int | None = Field(default=None, description="frames of a segment examined")
    tile_grids: Annotated[tuple[int, ...] | None, NoDecode] = Field(
        default=None, description="tile grids besides the full frame, e.g. `2,3`; empty: full frame only")
    models: Annotated[tuple[str, ...] | None, NoDecode] = Field(
        default=None, description="catalog ids of the ensemble, e.g. `ssd-mobilenet-v2-coco,ssdlite-person`")
    model_versions: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="versions the deployment expects, `id=1.0.0,...`: startup fails if the image holds others",
    )
    precision: Literal["FP32", "FP16", "INT8"] | None = Field(default=None, description="prepared IR to load")
    inference_precision: Literal["f32", "bf16", "f16"] | None = Field(
        default=None, description="arithmetic (f32 keeps the thresholds' calibration)")
    threads: int | None = Field(default=None, description="OpenVINO inference threads")
    fp_memory: Literal["s3", "folder", "off"] | None = Field(
        default=None,
        description="cameras' false-positive memories: s3 (what the feedback loop publishes in the media bucket; "
        "the AWS default), folder (VIGIA_FP_MEMORY_DIR; the embedded default), off",
    )

    learned_head: str | None = Field(
        default=None,
        description="the learned head the verifier judges with: a local path or s3://bucket/key of head.json "
        "(`vigia models rollout` writes it); unset: the hand-tuned rules",
    )
    learned_head_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$",
        description="sha256 of head.json: any other bytes are refused at startup",
    )

    @field_validator("tile_grids", "models", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _list_from_env(value)

    @field_validator("model_versions", mode="before")
    @classmethod
    def _versions(cls, value: Any) -> Any:
        return _mapping_from_env(value)

    @classmethod
    def from_environment(cls, **overrides: Any) -> VerifierEnv:
        """Read the environment; any problem is a VerifierConfigError naming the variable."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise VerifierConfigError(_describe(exc)) from exc

    def verifier_settings(self, base: VerifierSettings | None = None) -> VerifierSettings:
        """The VerifierSettings these choices give (on `base`'s other thresholds); device stays as chosen
        (`auto` is resolved where the hardware is known: cloud.runtime.verifier_adapter)."""
        chosen = {name: getattr(self, name) for name in
                  ("max_frames", "tile_grids", "models", "precision", "inference_precision", "threads")
                  if getattr(self, name) is not None}
        chosen["device"] = "CPU" if self.device == "cpu" else self.device
        base = base or VerifierSettings()
        try:
            settings = VerifierSettings.model_validate({**base.model_dump(), **chosen})
        except ValidationError as exc:
            raise VerifierConfigError(_describe(exc)) from exc
        self._check_versions(settings)
        if self.device != "cpu":
            self._check_gpu_precision(settings)
        return settings

    def _check_versions(self, settings: VerifierSettings) -> None:
        unknown = [m for m in settings.models if m not in CATALOG]
        if unknown:
            raise VerifierConfigError(f"{ENV_PREFIX}MODELS names {unknown}, not in the model catalog "
                                      f"({', '.join(sorted(CATALOG))})")
        for model_id, version in self.model_versions.items():
            if model_id not in settings.models:
                raise VerifierConfigError(f"{ENV_PREFIX}MODEL_VERSIONS names {model_id!r}, which is not in the "
                                          f"ensemble {list(settings.models)} ({ENV_PREFIX}MODELS)")
            held = CATALOG[model_id].version
            if version != held:
                raise VerifierConfigError(f"{ENV_PREFIX}MODEL_VERSIONS wants {model_id} {version}, this image "
                                          f"holds {held}: deploy the image that prepared {version}")

    @staticmethod
    def _check_gpu_precision(settings: VerifierSettings) -> None:
        if settings.precision != "FP32":
            raise VerifierConfigError(f"{ENV_PREFIX}PRECISION={settings.precision}: the GPU path runs the FP32 "
                                      "graph (set FP32, or device cpu)")
        if settings.inference_precision not in ("f32", "f16"):
            raise VerifierConfigError(f"{ENV_PREFIX}INFERENCE_PRECISION={settings.inference_precision}: on CUDA "
                                      "f32 or f16")


def _describe(exc: ValidationError) -> str:
    """Each problem as `VIGIA_VERIFIER_<FIELD>: message (got value)`."""
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]).upper() if error["loc"] else "* (together)"
        got = error.get("input")
        shown = f" (got {got!r})" if not isinstance(got, dict) else ""
        parts.append(f"{ENV_PREFIX}{field}: {error['msg']}{shown}")
    return "; ".join(parts)
