"""Clip sources: resolve a contracts.ClipRef to a local file, and read frames from it."""

from cloud.clips.frames import read_frames
from cloud.clips.local import LocalClipSource
from cloud.clips.router import ClipRouter, ClipTransportNotSupported
from cloud.clips.s3 import S3ClipSource

__all__ = ["ClipRouter", "ClipTransportNotSupported", "LocalClipSource", "S3ClipSource", "read_frames"]
