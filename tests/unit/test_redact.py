"""contracts.redact_uri hides user-info and secret query values, and leaves everything else alone."""

from __future__ import annotations

import pytest

from contracts import redact_uri


@pytest.mark.parametrize("text, expected", [
    ("rtsp://admin:s3cret@10.0.0.5:554/stream1", "rtsp://***@10.0.0.5:554/stream1"),
    ("rtsp://admin@cam/1", "rtsp://***@cam/1"),
    ("rtsp://admin:p@ss@cam/1", "rtsp://***@cam/1"),  # '@' inside the password
    ("rtsp://admin:pa/ss@cam/1", "rtsp://***@cam/1"),  # unencoded '/' inside the password
    ("rtsp://admin:a&b$c;d@cam/1", "rtsp://***@cam/1"),
    ("rtsp://ops@corp.example:pw@cam/1", "rtsp://***@cam/1"),  # '@' inside the user name
    ("rtsp://cam:554/a,rtsp://v:q@h2/b", "rtsp://***@h2/b"),  # no space between: hides more, never less
    ("open failed: rtsp://u:p@h1/a and rtsp://v:q@h2/b", "open failed: ***-h1 and ***-h2"),
    ("https://s3/x?X-Amz-Credential=AKIA%2F&X-Amz-Signature=abc&n=1",
     "https://s3/x?X-Amz-Credential=***&X-Amz-Signature=***&n=1"),
    ("https://h/cb?access_token=t0k&client_secret=s&api-key=k&state=ok",
     "https://h/cb?access_token=***&client_secret=***&api-key=***&state=ok"),
    ("https://acct.blob/c?sv=2021&sig=AbC%3D", "https://acct.blob/c?sv=2021&sig=***"),
])
def test_credentials_are_hidden(text: str, expected: str) -> None:
    expected = expected.replace("***-h1", "rtsp://***@h1/a").replace("***-h2", "rtsp://***@h2/b")
    assert redact_uri(text) == expected


@pytest.mark.parametrize("text", [
    "rtsp://10.0.0.5:554/stream1",
    "/var/lib/vigia/clips/cam1/01HZX.avi",
    "mail bob@example.com about http://host/x",
    "threshold=0.6 filters.min_area=0.001",
    "",
])
def test_text_without_credentials_is_unchanged(text: str) -> None:
    assert redact_uri(text) == text
