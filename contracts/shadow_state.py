"""How a shadow `update` merges into a state document (AWS IoT Device Shadow rules), shared by the
gateway's config store, the operator's config tool and the local shadow service."""

from __future__ import annotations

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
