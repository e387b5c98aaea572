"""Credentials never reach a log line, a report or a heartbeat: `rtsp://user:pass@host` → `rtsp://***@host`."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s]+)@")
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&](?:password|passwd|pwd|token|secret|key|signature|x-amz-signature|x-amz-credential|"
    r"x-amz-security-token|auth)=)[^&\s]*",
    re.IGNORECASE,
)


def redact_uri(text: str) -> str:
    """Hide the user-info of every URL in `text` and the values of secret-looking query parameters."""
    if not text or ("://" not in text and "=" not in text):
        return text
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m.group('key')}***", text)
