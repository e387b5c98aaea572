"""The JSON log formatter never writes a credential: message, extra values (nested too), exception text."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from vigia.logs import configure_logging

URL = "rtsp://admin:Pa55&w$rd@192.168.1.20:554/Streaming/Channels/101"
SAFE = "rtsp://***@192.168.1.20:554/Streaming/Channels/101"
PASSWORD = "Pa55&w$rd"


@pytest.fixture
def lines():
    """Log through the real configuration into a buffer; yields a reader of the JSON lines."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging("DEBUG", buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_url_in_the_message_is_redacted(lines) -> None:
    logging.getLogger("vigia.edge").warning("cannot open %s, retrying", URL)
    (line,) = lines()
    assert line["msg"] == f"cannot open {SAFE}, retrying"
    assert line["level"] == "WARNING" and line["logger"] == "vigia.edge"


def test_extra_values_are_redacted_at_any_depth(lines) -> None:
    logging.getLogger("vigia.edge").info("source opened", extra={
        "camera_id": "cam1", "source": URL, "sources": {"cam1": URL, "cam2": [URL, "file.mp4"]},
        "tries": (URL,), "path": Path("/srv/clips"), "score": np.float32(0.5), "frames": 12,
    })
    (line,) = lines()
    assert line["source"] == SAFE
    assert line["sources"] == {"cam1": SAFE, "cam2": [SAFE, "file.mp4"]}
    assert line["tries"] == [SAFE]
    assert (line["camera_id"], line["path"], line["score"], line["frames"]) == ("cam1", "/srv/clips", 0.5, 12)


def test_an_object_whose_text_holds_a_url_is_redacted(lines) -> None:
    class Source:
        def __str__(self) -> str:
            return f"Source({URL})"

    logging.getLogger("vigia.edge").info("reconnect", extra={"source_obj": Source()})
    (line,) = lines()
    assert line["source_obj"] == f"Source({SAFE})"


def test_exception_text_is_redacted(lines) -> None:
    try:
        raise ConnectionError(f"RTSP DESCRIBE failed for {URL}: 401")
    except ConnectionError:
        logging.getLogger("vigia.edge").exception("stream lost", extra={"camera_id": "cam1"})
    (line,) = lines()
    assert f"ConnectionError: RTSP DESCRIBE failed for {SAFE}: 401" in line["error"]
    assert line["msg"] == "stream lost" and line["camera_id"] == "cam1"


def test_no_line_holds_the_password(lines) -> None:
    log = logging.getLogger("vigia.edge")
    log.info(URL, extra={"a": [{"b": URL}], "c": URL.encode()})
    try:
        raise ValueError(URL)
    except ValueError:
        log.error("bad source %r", URL, exc_info=True, stack_info=True)
    found = lines()
    assert len(found) == 2
    for line in found:
        assert PASSWORD not in json.dumps(line) and "admin" not in json.dumps(line)
    assert found[0]["c"] == SAFE and "stack" in found[1]
