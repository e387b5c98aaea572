"""Where a candidate's clip segment lives."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ClipRef(BaseModel):
    """A reference to a clip segment; the verifier resolves it through its clip-source port."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["local", "s3", "kvs"] = Field(description="which clip-source adapter resolves `uri`")
    uri: str = Field(
        min_length=1,
        max_length=2048,
        description="local: path relative to the clip root; s3: s3://bucket/key; kvs: kvs://stream-name",
    )
    content_type: str = Field(default="video/x-msvideo", max_length=100, description="MIME type of the segment")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description="checksum of the segment")
    size_bytes: int | None = Field(default=None, ge=0, description="size of the segment")
    offset_s: float = Field(default=0.0, ge=0, description="source-clip time of the segment's first frame")
    fps: float | None = Field(default=None, gt=0, description="frame rate the segment was written at")
    start_ts: float | None = Field(
        default=None, description="KVS only: producer timestamp (epoch s) where the event starts"
    )
    end_ts: float | None = Field(default=None, description="KVS only: producer timestamp where it ends")
