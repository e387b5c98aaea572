"""Credentials never reach a log line, a report or a heartbeat: `rtsp://user:pass@host` → `rtsp://***@host`."""

from __future__ import annotations

import re

# user[:password]@ after a scheme. Camera passwords often hold '@', '/', '&' or '$' unencoded, so when
# the first path segment holds ':' or '@', the user-info runs to the last '@' before whitespace. Erring
# this way can hide a host (`http://h:80/a@b` → `http://***@b`) but never shows a password.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?=[^\s/]*[:@])(?P<userinfo>\S*)@")
# secret-looking parameters in a query string or a `;`-separated list, also with a prefix
# (access_token, client_secret, api-key, x-amz-credential, x-amz-security-token)
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?:[a-z0-9._-]*[_-])?(?:password|passwd|pwd|pass|token|secret|key|apikey|sig|signature|"
    r"credential|auth)=)[^&;#\s]*",
    re.IGNORECASE,
)


def redact_uri(text: str) -> str:
    """Hide the user-info of every URL in `text` and the values of secret-looking query parameters."""
    if not text or ("://" not in text and "=" not in text):
        return text
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m.group('key')}***", text)
