"""The review set's manifest (JSON for tools, CSV for people) and reading review sets back (the console).

`manifest.json` is written last: a set without it is incomplete and is not listed.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

from cloud.sampler.review_store import ReviewStore, UnknownReviewSet, review_store_for, validate_set_name
from cloud.sampler.selection import Pick

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST_JSON = "manifest.json"
MANIFEST_CSV = "manifest.csv"

CSV_COLUMNS = (
    "event_id", "camera_id", "gateway_id", "site_id", "started_at", "ended_at",
    "edge_score", "edge_threshold", "verifier_score", "verifier_decision", "verifier_confirm_threshold",
    "edge_model", "verifier_models", "config_version", "label", "reasons", "why",
    "source_clip_key", "source_snapshot_key", "review_clip_key", "review_snapshot_key", "missing",
)


def entry_for(pick: Pick, confirm_threshold: float, review_keys: dict[str, str | None],
              missing: list[str]) -> dict[str, Any]:
    """One event of the manifest: what a reviewer needs to judge it and where its media is."""
    r = pick.record
    return {
        "event_id": r.event_id,
        "camera_id": r.camera_id,
        "gateway_id": r.gateway_id,
        "site_id": r.site_id,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "edge_score": r.edge_score,
        "edge_threshold": r.edge_threshold,
        "verifier_score": r.score,
        "verifier_decision": r.decision,
        "verifier_confirm_threshold": confirm_threshold,
        "edge_model": r.edge_model,
        "verifier_models": list(r.verifier_models),
        "config_version": r.config_version,
        "label": getattr(r, "label", None),
        "reasons": list(pick.reasons),
        "why": list(pick.details),
        "source_clip_key": r.clip_key,
        "source_snapshot_key": r.snapshot_key,
        "review_clip_key": review_keys.get("clip"),
        "review_snapshot_key": review_keys.get("snapshot"),
        "missing": missing,
    }


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):  # sentences (`why`) joined with ' | ', codes and versions with ';'
        return (" | " if column == "why" else ";").join(str(v) for v in value)
    return str(value)


def to_csv(entries: list[dict[str, Any]]) -> str:
    """One row per event, the columns of CSV_COLUMNS."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for entry in entries:
        writer.writerow({c: _cell(c, entry[c]) for c in CSV_COLUMNS})
    return buf.getvalue()


def write_manifests(store: ReviewStore, run_id: str, manifest: dict[str, Any]) -> tuple[str, str]:
    csv_key, json_key = f"{run_id}/{MANIFEST_CSV}", f"{run_id}/{MANIFEST_JSON}"
    store.put_bytes(csv_key, to_csv(manifest["events"]).encode(), "text/csv")
    store.put_bytes(json_key, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(),
                    "application/json")
    return json_key, csv_key


def _summary(name: str, manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "run_id": manifest.get("run_id", name),
        "since": manifest.get("window", {}).get("since"),
        "until": manifest.get("window", {}).get("until"),
        "generated_at": manifest.get("generated_at"),
        "events": len(manifest.get("events", [])),
        "by_reason": manifest.get("counts", {}).get("by_reason", {}),
    }


def read_review_set(root: str | Path | ReviewStore, name: str) -> dict[str, Any]:
    """The whole manifest of one review set (`root`: a folder, `s3://bucket[/prefix]`, or a ReviewStore).

    UnknownReviewSet when there is none of that name (or it is incomplete); ValueError for a bad name."""
    store = review_store_for(root)
    validate_set_name(name)
    try:
        raw = store.get_bytes(f"{name}/{MANIFEST_JSON}")
    except FileNotFoundError as exc:
        raise UnknownReviewSet(f"no review set {name!r} in {store.describe()}") from exc
    return json.loads(raw)


def list_review_sets(root: str | Path | ReviewStore) -> list[dict[str, Any]]:
    """Complete review sets under `root`, newest window first, each summarised (name, window, counts).

    A set whose manifest cannot be read is logged and left out; the others are still listed."""
    store = review_store_for(root)
    found = []
    for name in store.set_names():
        try:
            found.append(_summary(name, read_review_set(store, name)))
        except UnknownReviewSet:
            continue  # being written, or not a review set
        except ValueError as exc:
            log.warning("unreadable review manifest skipped", extra={"review_set": name, "error": str(exc)})
    return sorted(found, key=lambda s: (s["until"] or "", s["name"]), reverse=True)


def read_review_object(root: str | Path | ReviewStore, key: str) -> bytes:
    """A copied clip or snapshot by its review key (as the manifest lists it)."""
    store = review_store_for(root)
    validate_set_name(key.split("/", 1)[0])
    return store.get_bytes(key)
