"""One way to say what is wrong with a document that failed validation, for logs, shadows and CLIs."""

from __future__ import annotations

from pydantic import ValidationError

# A message lands in a shadow's 8 KB `reported` and in log lines: an unknown key may be kilobytes long.
MAX_ENTRY_CHARS = 200


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def describe_validation_error(exc: ValidationError, limit: int = 5) -> str:
    """`threshold: Input should be less than or equal to 0.99; filters.zones.0: ...` — field path first,
    pydantic's words after; at most `limit` entries, then `(+N more)`."""
    errors = exc.errors(include_url=False, include_input=False)
    parts = []
    for err in errors[: max(limit, 1)]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(truncate(f"{loc}: {err['msg']}" if loc else err["msg"], MAX_ENTRY_CHARS))
    if len(errors) > len(parts):
        parts.append(f"(+{len(errors) - len(parts)} more)")
    return "; ".join(parts)
