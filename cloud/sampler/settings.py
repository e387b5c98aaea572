"""The sampler's settings (VIGIA_* environment, like the rest of the cloud) and its stores from them.

Its own settings rather than CloudSettings: the sampler needs no topic or dead-letter queue, and the
verifier needs no review bucket.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.sampler.policy import SamplingPolicy
from cloud.sampler.review_store import FolderReviewStore, ReviewStore, S3ReviewStore


def default_review_root(cloud_data_dir: Path) -> Path:
    """Where the embedded default keeps review sets: beside the event store (`<demo data dir>/cloud/review`)."""
    return cloud_data_dir / "review"


class SamplerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIA_", extra="forbid", validate_default=True)

    store: Literal["local", "aws"] = Field(default="local", description="local: SQLite + folders; aws: DynamoDB + S3")
    data_dir: Path = Field(default=Path("var/cloud"), description="embedded cloud data dir (events.sqlite3, objects/)")
    review_dir: Path | None = Field(default=None, description="embedded review folder (default data_dir/review)")
    bucket: str | None = Field(default=None, min_length=3, max_length=63, description="S3 media bucket")
    table: str | None = Field(default=None, min_length=3, max_length=255, description="DynamoDB events table")
    review_bucket: str | None = Field(default=None, min_length=3, max_length=63, description="S3 review bucket")
    sample_window_hours: float = Field(default=24.0, gt=0, le=744, description="window ending at the run's time")
    sample_band: float = Field(default=0.1, gt=0, le=0.5, description="± around a threshold that counts as near")
    sample_per_camera: int = Field(default=20, ge=1, le=10_000, description="most events from one camera")
    sample_max: int = Field(default=200, ge=1, le=100_000, description="most events in one run")
    sample_random_share: float = Field(default=0.02, ge=0, le=1, description="share picked at random")
    sample_seed: int = Field(default=0, ge=0, description="seed of the random share")

    @model_validator(mode="after")
    def _aws_needs_names(self) -> SamplerSettings:
        if self.store == "aws":
            missing = [f"VIGIA_{n.upper()}" for n in ("bucket", "table", "review_bucket") if not getattr(self, n)]
            if missing:
                raise ValueError(f"store=aws needs {', '.join(missing)}")
        return self

    def policy(self, **overrides: Any) -> SamplingPolicy:
        """The policy from these settings; `overrides` (e.g. the command's options) win when not None."""
        values = {"band": self.sample_band, "per_camera": self.sample_per_camera, "max_events": self.sample_max,
                  "random_share": self.sample_random_share, "seed": self.sample_seed}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return SamplingPolicy(**values)

    @property
    def review_root(self) -> str | Path:
        if self.store == "aws":
            return f"s3://{self.review_bucket}"
        return self.review_dir or default_review_root(self.data_dir)


def build_sampler(settings: SamplerSettings) -> tuple[Any, Any, ReviewStore]:
    """(event store, media store, review store) for the settings' mode."""
    if settings.store == "aws":
        from cloud.events.dynamodb import DynamoEventStore
        from cloud.storage.s3 import S3ObjectStore

        assert settings.bucket and settings.table and settings.review_bucket  # validated
        return DynamoEventStore(settings.table), S3ObjectStore(settings.bucket), S3ReviewStore(settings.review_bucket)
    from cloud.events.sqlite import SqliteEventStore
    from cloud.storage.local import FolderObjectStore

    db = settings.data_dir / "events.sqlite3"
    if not db.is_file():  # SqliteEventStore would create an empty one: say what is wrong instead
        raise FileNotFoundError(f"no event store at {db} (run `vigia demo --data-dir ...` first, or set "
                                "VIGIA_DATA_DIR to the cloud's data dir)")
    review = FolderReviewStore(Path(settings.review_root))
    return SqliteEventStore(db), FolderObjectStore(settings.data_dir / "objects"), review
