"""Object store for clips and snapshots: S3 in AWS, a local folder embedded. Same key layout in both."""

from cloud.storage.keys import clip_key, media_tags, snapshot_key
from cloud.storage.local import FolderObjectStore
from cloud.storage.s3 import S3ObjectStore

__all__ = ["FolderObjectStore", "S3ObjectStore", "clip_key", "media_tags", "snapshot_key"]
