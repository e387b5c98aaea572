"""Per-camera thresholds from labeled data: selection with a recall lower bound, curves, applying through
the shadow. `vigia tune` drives it; docs/tuning.md explains the statistics and what the data cannot show."""

from cloud.tuning.bounds import clopper_pearson_lower, people_needed
from cloud.tuning.threshold import (
    CrossValidation,
    CurvePoint,
    LabeledScore,
    TuningResult,
    TuningSettings,
    cross_validate,
    point_at,
    select_threshold,
)

__all__ = ["CrossValidation", "CurvePoint", "LabeledScore", "TuningResult", "TuningSettings",
           "clopper_pearson_lower", "cross_validate", "people_needed", "point_at", "select_threshold"]
