"""KvsClipSource refuses, before any AWS call, a reference it cannot turn into a GetClip request."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.clips.kvs import KvsClipSource, parse_kvs_uri
from cloud.ports import ClipRejected
from contracts import ClipRef


class NoCalls:
    """A client that fails the test if used: these refusals must come before any request."""

    def __getattr__(self, name: str) -> None:
        raise AssertionError(f"unexpected AWS call {name}")


def test_a_stream_uri_is_parsed() -> None:
    assert parse_kvs_uri("kvs://vigia-gw-1-cam-front") == "vigia-gw-1-cam-front"


@pytest.mark.parametrize("uri", ["kvs://", "kvs://a/b", "s3://bucket/key", "kvs://name with space"])
def test_a_malformed_uri_is_rejected(uri: str, tmp_path: Path) -> None:
    with pytest.raises(ClipRejected, match="is not kvs://stream-name"):
        KvsClipSource(client=NoCalls()).fetch(ClipRef(kind="kvs", uri=uri, start_ts=1.0, end_ts=2.0), tmp_path)


@pytest.mark.parametrize(("start", "end"), [(None, 2.0), (1.0, None), (3.0, 2.0)])
def test_a_reference_without_a_range_is_rejected(start: float | None, end: float | None, tmp_path: Path) -> None:
    ref = ClipRef(kind="kvs", uri="kvs://vigia-gw-1-cam", start_ts=start, end_ts=end)
    with pytest.raises(ClipRejected, match="needs start_ts <= end_ts"):
        KvsClipSource(client=NoCalls()).fetch(ref, tmp_path)


def test_another_kind_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ClipRejected, match="cannot fetch a 's3' clip"):
        KvsClipSource(client=NoCalls()).fetch(ClipRef(kind="s3", uri="s3://b/k"), tmp_path)
