from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.gateway_file import GatewayFileError, load_gateway_file


def write(tmp_path: Path, doc: object, name: str = "gateway.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_sources_and_config_are_read_apart(tmp_path: Path) -> None:
    gateway = load_gateway_file(write(tmp_path, {
        "sources": {"door": "rtsp://u:p@10.0.0.5/1", "yard": "/clips/yard"},
        "defaults": {"threshold": 0.55}, "cameras": {"yard": {"threshold": 0.7}}}))
    assert gateway.sources == {"door": "rtsp://u:p@10.0.0.5/1", "yard": "/clips/yard"}
    assert gateway.config.for_camera("door").threshold == 0.55
    assert gateway.config.for_camera("yard").threshold == 0.7


@pytest.mark.parametrize(("doc", "message"), [
    ("{not json", "not valid JSON"),
    ([1, 2], "expected an object"),
    ({"sources": {"../x": "/clips"}}, "camera id '../x' is not valid"),
    ({"sources": {"door": "  "}}, "empty source"),
    ({"sources": {"door": "/c"}, "cameras": {"door": {"threshold": 3}}}, "cameras.door.threshold"),
    ({"sources": {"door": "/c"}, "camras": {}}, "camras"),
])
def test_a_bad_gateway_file_is_one_clear_error_naming_the_field(tmp_path: Path, doc: object, message: str) -> None:
    with pytest.raises(GatewayFileError, match=r"gateway\.json") as err:
        load_gateway_file(write(tmp_path, doc))
    assert message in str(err.value)


def test_a_missing_or_huge_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GatewayFileError, match="cannot be read"):
        load_gateway_file(tmp_path / "nope.json")
    with pytest.raises(GatewayFileError, match="larger than"):
        load_gateway_file(write(tmp_path, {"sources": {}, "pad": "x" * 300_000}))
