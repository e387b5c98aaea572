"""Shadow documents as both sides handle them (AWS IoT Device Shadow rules), shared by the gateway's config
store and shadow sync, the operator's config tool and the local shadow service: how an `update` merges into
a state document, and how a message is read without trusting it (size, nesting depth, encoding)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any


def merge_state(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Objects merge key by key, arrays and scalars replace, `null` deletes the key (a whole section too);
    an object emptied by null-deletes disappears, an explicit `{}` stays."""
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            merged = merge_state(out[key] if isinstance(out.get(key), Mapping) else {}, value)
            if merged or not value:
                out[key] = merged
            else:
                out.pop(key, None)
        else:
            out[key] = value
    return out


# --- reading a shadow message without trusting it -----------------------------------------------------------
# Python's json parser recurses once per nesting level: a 10,000-deep document raises RecursionError, which
# kills whatever thread parsed it. Every shadow message is therefore sized and its depth counted first, in
# one linear pass over the raw bytes, and only then parsed.
MAX_SHADOW_MESSAGE_BYTES = 128 * 1024  # IoT Core's MQTT message cap
MAX_SHADOW_DEPTH = 32  # containers inside one another, the top-level object counting 1; ours need about 10

_SPECIAL = re.compile(rb'[\[\]{}"\\]')
_CLIENT_TOKEN = re.compile(rb'"clientToken"\s*:\s*"([^"\\]{1,64})"')
_OPEN, _CLOSE, _QUOTE, _BACKSLASH = frozenset(b"[{"), frozenset(b"]}"), ord('"'), ord("\\")


class DocumentRefused(ValueError):
    """A shadow message refused before parsing or as unparseable; `code` is the shadow service's (400, 413, 415)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def json_depth(data: bytes, stop_above: int | None = None) -> int:
    """Deepest nesting of objects and arrays in UTF-8 JSON text, brackets inside strings not counted.

    Linear in the length (only brackets, quotes and backslashes are visited); stops early once the depth
    passes `stop_above`. Text that is not valid JSON gives some number: the parser refuses it afterwards.
    """
    depth = deepest = 0
    in_string = False
    escaped_at = -1
    for match in _SPECIAL.finditer(data):
        pos = match.start()
        if pos == escaped_at:  # the character after a backslash inside a string
            continue
        char = data[pos]
        if in_string:
            if char == _BACKSLASH:
                escaped_at = pos + 1
            elif char == _QUOTE:
                in_string = False
        elif char == _QUOTE:
            in_string = True
        elif char in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and depth > stop_above:
                    return depth
        elif char in _CLOSE:
            depth -= 1
    return deepest


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_shadow_json(
    payload: bytes | str, max_bytes: int = MAX_SHADOW_MESSAGE_BYTES, max_depth: int = MAX_SHADOW_DEPTH
) -> Any:
    """Parse one shadow message, refusing (DocumentRefused) what is too large, too deep, not UTF-8 or not
    JSON (NaN and Infinity included) before it can exhaust memory or the recursion limit."""
    data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    if len(data) > max_bytes:
        raise DocumentRefused(413, f"The payload exceeds the maximum size allowed ({len(data)} > {max_bytes} bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentRefused(415, "Unsupported documented encoding; supported encoding is UTF-8") from exc
    if json_depth(data, stop_above=max_depth) > max_depth:
        raise DocumentRefused(400, f"JSON contains too many levels of nesting; maximum is {max_depth}")
    try:
        return json.loads(text, parse_constant=_no_constants)
    except ValueError as exc:
        raise DocumentRefused(400, f"Invalid JSON: {str(exc)[:120]}") from exc


def find_client_token(payload: bytes | str) -> str | None:
    """The clientToken of a message that could not be parsed, so its sender still gets an answer."""
    data = payload.encode("utf-8", "replace") if isinstance(payload, str) else bytes(payload)
    match = _CLIENT_TOKEN.search(data[:MAX_SHADOW_MESSAGE_BYTES])
    return match.group(1).decode("utf-8", "replace") if match else None
