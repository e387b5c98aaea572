"""Near-threshold sampling: pick the events the system was least sure of (and those customers flagged),
copy their clips and snapshots to a review folder/bucket, and write `manifest.json` / `manifest.csv`."""

from cloud.sampler.manifest import list_review_sets, read_review_object, read_review_set
from cloud.sampler.policy import SamplingPolicy, Window
from cloud.sampler.review_store import (
    FolderReviewStore,
    MissingObject,
    S3ReviewStore,
    UnknownReviewSet,
    review_store_for,
)
from cloud.sampler.run import SampleResult, run_sampler
from cloud.sampler.settings import SamplerSettings, build_sampler, default_review_root

__all__ = [
    "FolderReviewStore", "MissingObject", "S3ReviewStore", "SampleResult", "SamplerSettings", "SamplingPolicy",
    "UnknownReviewSet", "Window", "build_sampler", "default_review_root", "list_review_sets",
    "read_review_object", "read_review_set", "review_store_for", "run_sampler",
]
