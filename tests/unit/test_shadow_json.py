"""The pre-parse guard every shadow message goes through (contracts.shadow_state.parse_shadow_json), and the
one validation-error formatter (contracts.errors). Property-based: hypothesis writes the documents."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts import CameraConfig
from contracts.errors import describe_validation_error
from contracts.shadow_state import (
    MAX_SHADOW_DEPTH,
    MAX_SHADOW_MESSAGE_BYTES,
    DocumentRefused,
    find_client_token,
    json_depth,
    parse_shadow_json,
)

# strings full of the characters the depth scan must not be fooled by
_tricky_text = st.text(alphabet=st.sampled_from('[]{}"\\ a:,é\n\u2028'), max_size=12)
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _tricky_text
_json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_tricky_text, children, max_size=4),
    max_leaves=40,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@settings(max_examples=150, deadline=None, database=None)
@given(_json_values, st.booleans())
def test_depth_scan_matches_the_parsed_structure(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert json_depth(text.encode("utf-8")) == _depth(value)


@settings(max_examples=150, deadline=None, database=None)
@given(_json_values, st.integers(min_value=1, max_value=6))
def test_guard_parses_what_is_within_bounds_and_refuses_the_rest(value, max_depth):
    text = json.dumps(value)
    if _depth(value) <= max_depth:
        assert parse_shadow_json(text, max_depth=max_depth) == value
    else:
        with pytest.raises(DocumentRefused) as refused:
            parse_shadow_json(text, max_depth=max_depth)
        assert refused.value.code == 400 and "too many levels of nesting" in refused.value.message


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=300) | st.text(alphabet=st.sampled_from('[]{}"\\:,0n'), max_size=300))
def test_any_input_is_parsed_or_refused_never_anything_else(payload):
    try:
        parse_shadow_json(payload, max_depth=3)
    except DocumentRefused as exc:
        assert exc.code in (400, 413, 415)


@settings(database=None)  # no example database written into the working tree
@given(st.integers(min_value=0, max_value=3 * MAX_SHADOW_DEPTH), st.sampled_from("[{"))
def test_nesting_is_refused_exactly_above_the_limit(levels, opener):
    closer = {"[": "]", "{": "}"}[opener]
    inner = "1" if opener == "[" else ""
    if opener == "{":  # {"a":{"a":...{}}}
        text = '{"a":' * (levels - 1) + "{}" + "}" * (levels - 1) if levels else "1"
    else:
        text = opener * levels + inner + closer * levels
    if levels <= MAX_SHADOW_DEPTH:
        parse_shadow_json(text)
    else:
        with pytest.raises(DocumentRefused, match="maximum is 32"):
            parse_shadow_json(text)


def test_ten_thousand_levels_and_oversize_are_refused_before_parsing():
    with pytest.raises(DocumentRefused) as deep:
        parse_shadow_json(b'{"state":' * 10_000 + b"1" + b"}" * 10_000)
    assert deep.value.code == 400
    with pytest.raises(DocumentRefused) as huge:
        parse_shadow_json(b'{"state":{"x":"' + b"a" * MAX_SHADOW_MESSAGE_BYTES + b'"}}')
    assert huge.value.code == 413
    with pytest.raises(DocumentRefused) as latin1:
        parse_shadow_json('{"a":"é"}'.encode("latin-1"))
    assert latin1.value.code == 415
    for constant in (b'{"a":NaN}', b'{"a":Infinity}', b'{"a":-Infinity}'):
        with pytest.raises(DocumentRefused, match="not JSON"):
            parse_shadow_json(constant)


def test_client_token_is_found_in_a_refused_message():
    assert find_client_token(b'{"clientToken": "abc-1", "state":' + b"[" * 100) == "abc-1"
    assert find_client_token(b'{"state":' + b"[" * 100) is None


def test_validation_errors_are_described_once_for_everyone():
    with pytest.raises(ValidationError) as one:
        CameraConfig.model_validate({"threshold": 1.5})
    assert describe_validation_error(one.value) == "threshold: Input should be less than or equal to 0.99"
    with pytest.raises(ValidationError) as many:
        CameraConfig.model_validate({f"k{i:03d}": 1 for i in range(300)} | {"filters": {"zones": [[[2, 0]]]}})
    assert describe_validation_error(many.value, limit=3) == (
        "filters.zones.0.0.0: Input should be less than or equal to 1; k000: Extra inputs are not permitted; "
        "k001: Extra inputs are not permitted; (+298 more)")
    with pytest.raises(ValidationError) as root:
        CameraConfig.model_validate({"threshold": 0.2, "detect_threshold": 0.3})
    assert describe_validation_error(root.value) == (
        "Value error, detect_threshold (0.3) must not exceed threshold (0.2)")
    with pytest.raises(ValidationError) as long_key:
        CameraConfig.model_validate({"x" * 5000: 1})
    assert len(describe_validation_error(long_key.value)) == 200
