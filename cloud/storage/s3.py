"""Object store in S3, objects tagged (camera, verdict, model_version) for lifecycle rules and costs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cloud.aws import aws_client
from cloud.storage.keys import validate_key


class S3ObjectStore:
    def __init__(self, bucket: str, client: Any | None = None) -> None:
        if not bucket:
            raise ValueError("S3ObjectStore needs a bucket name (VIGIA_BUCKET)")
        self.bucket = bucket
        client = aws_client("s3", client)
        self.client = client

    def put_bytes(self, key: str, data: bytes, content_type: str, tags: Mapping[str, str]) -> str:
        self.client.put_object(
            Bucket=self.bucket, Key=validate_key(key), Body=data, ContentType=content_type,
            Tagging=urlencode(dict(tags)),
        )
        return f"s3://{self.bucket}/{key}"

    def put_file(self, key: str, path: Path, content_type: str, tags: Mapping[str, str]) -> str:
        # upload_file switches to multipart for large clips; the tags travel with the upload.
        self.client.upload_file(
            str(path), self.bucket, validate_key(key),
            ExtraArgs={"ContentType": content_type, "Tagging": urlencode(dict(tags))},
        )
        return f"s3://{self.bucket}/{key}"

    def get_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=validate_key(key))["Body"].read()

    def get_tags(self, key: str) -> dict[str, str]:
        resp = self.client.get_object_tagging(Bucket=self.bucket, Key=validate_key(key))
        return {t["Key"]: t["Value"] for t in resp["TagSet"]}
