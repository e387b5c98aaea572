"""Cloud runtime settings, from VIGIA_* environment variables (AWS endpoints/region from the AWS_* ones).

`store=local` is the embedded default (folder + SQLite + JSONL under `data_dir`); `store=aws` uses
S3 + DynamoDB + SNS + SQS. boto3 reads AWS_ENDPOINT_URL itself, so moto server needs no code branch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CloudSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIA_", extra="forbid", validate_default=True)

    store: Literal["local", "aws"] = Field(default="local", description="local: embedded; aws: S3/DynamoDB/SNS")
    data_dir: Path = Field(default=Path("var/cloud"), description="embedded stores live here")
    clip_root: Path | None = Field(
        default=None, description="root of local clips (ClipRef kind 'local'); default data_dir/incoming"
    )
    fp_memory_dir: Path | None = Field(
        default=None, description="cameras' false-positive memories (default: data_dir/fp_memory when local)"
    )
    bucket: str | None = Field(default=None, min_length=3, max_length=63, description="S3 bucket for media")
    table: str | None = Field(default=None, min_length=3, max_length=255, description="DynamoDB events table")
    topic_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:sns:", description="SNS alert topic")
    queue_url: str | None = Field(default=None, max_length=1024, description="SQS queue of candidates (worker)")
    dlq_url: str | None = Field(default=None, max_length=1024, description="SQS dead-letter queue")
    event_ttl_days: int = Field(default=90, ge=1, le=3650, description="events expire after this many days")
    notify_lease_s: float = Field(
        default=30.0, gt=0, le=900,
        description="a delivery that claimed the alert but did not confirm it within this time is presumed "
        "crashed; a redelivery may then notify",
    )
    processing_lease_s: float = Field(
        default=300.0, gt=0, le=43200,
        description="a delivery that claimed an event for verification and has not stored it within this time "
        "is presumed crashed; a redelivery may then verify it (above the longest verification)",
    )
    max_attempts: int = Field(default=3, ge=1, le=20, description="in-process tries before dead-lettering")
    verifier: str = Field(
        default="cloud.runtime.verifier_adapter:real_verify",
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="module:factory returning the verify callable",
    )
    worker_wait_s: int = Field(default=20, ge=0, le=20, description="SQS long-poll wait")
    worker_visibility_s: int = Field(default=60, ge=5, le=43200, description="visibility the heartbeat keeps")
    worker_heartbeat_s: float = Field(default=20.0, gt=0, le=3600, description="how often visibility is extended")

    @model_validator(mode="after")
    def _aws_needs_names(self) -> CloudSettings:
        if self.store == "aws":
            missing = [f"VIGIA_{n.upper()}" for n in ("bucket", "table", "topic_arn", "dlq_url")
                       if not getattr(self, n)]
            if missing:
                raise ValueError(f"store=aws needs {', '.join(missing)}")
        if self.worker_heartbeat_s >= self.worker_visibility_s:
            raise ValueError(
                f"worker_heartbeat_s ({self.worker_heartbeat_s}) must be below "
                f"worker_visibility_s ({self.worker_visibility_s})"
            )
        return self

    @property
    def memory_dir(self) -> Path | None:
        """Where the cameras' false-positive memories live (the embedded default keeps them under data_dir)."""
        if self.fp_memory_dir is not None:
            return self.fp_memory_dir
        return self.data_dir / "fp_memory" if self.store == "local" else None

    @property
    def local_clip_root(self) -> Path:
        return self.clip_root or self.data_dir / "incoming"
