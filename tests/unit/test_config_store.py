"""ConfigStore: partial deltas, per-camera all-or-nothing, refusals reported, persistence across restarts."""

from __future__ import annotations

import json

import pytest

from cloud.shadow_service import ShadowError, ShadowStore
from contracts import CameraConfig, GatewayConfig
from contracts.shadow_state import merge_state
from edge_agent.config_store import ConfigStore, project


def test_partial_delta_merges_into_running_camera(tmp_path):
    store = ConfigStore(tmp_path / "cfg.json")
    result = store.apply({"cameras": {"cam1": {"threshold": 0.6, "filters": {"min_area": 0.001}}}}, version=3)
    assert result.ok and result.applied == ["cam1"]
    cam = store.for_camera("cam1")
    assert cam.threshold == 0.6 and cam.filters.min_area == 0.001
    assert cam.filters.max_area == CameraConfig().filters.max_area  # untouched fields keep their values
    assert store.version == 3
    store.apply({"cameras": {"cam1": {"sample_fps": 2}}}, version=4)
    assert store.for_camera("cam1").threshold == 0.6  # a later partial delta keeps earlier values
    assert store.for_camera("other") == store.config.defaults


def test_refused_camera_keeps_last_good_value_while_others_apply(tmp_path):
    store = ConfigStore(tmp_path / "cfg.json")
    store.apply({"cameras": {"cam1": {"threshold": 0.6}}}, version=1)
    result = store.apply({"cameras": {"cam1": {"threshold": 1.5, "sample_fps": 3}, "cam2": {"threshold": 0.7}}},
                         version=2)
    assert result.applied == ["cam2"]
    assert result.errors == {"cam1": "threshold: Input should be less than or equal to 0.99"}
    assert store.for_camera("cam1").threshold == 0.6
    assert store.for_camera("cam1").sample_fps == CameraConfig().sample_fps  # all-or-nothing per camera
    assert store.for_camera("cam2").threshold == 0.7
    assert store.version == 2


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"threshold": "high"}, "threshold: Input should be a valid number"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"threshold": 0.2, "detect_threshold": 0.3}, "must not exceed threshold"),
        ("0.6", "must be an object"),
    ],
)
def test_bad_values_are_refused_with_the_field(tmp_path, patch, fragment, caplog):
    store = ConfigStore(tmp_path / "cfg.json")
    result = store.apply({"cameras": {"cam1": patch}}, version=5)
    assert fragment in result.errors["cam1"]
    assert store.version == 0 and "cam1" not in store.config.cameras
    assert any(r.message == "config refused" for r in caplog.records)


def test_unknown_camera_and_unknown_field(tmp_path):
    store = ConfigStore(tmp_path / "cfg.json", known_cameras=["cam1"])
    result = store.apply({"cameras": {"cam9": {"threshold": 0.6}, "cam1": {"threshold": 0.6}}, "extra": 1})
    assert "unknown camera" in result.errors["cam9"]
    assert result.errors["_unknown"] == (
        "1 unknown field refused (expected schema_version, defaults, cameras): 'extra'")
    assert store.for_camera("cam1").threshold == 0.6
    assert "cam9" not in store.config.cameras


def test_error_clears_once_fixed_and_listener_fires(tmp_path):
    store = ConfigStore(tmp_path / "cfg.json")
    seen = []
    store.add_listener(lambda config, version: seen.append(version))
    store.apply({"cameras": {"cam1": {"threshold": 2}}}, version=1)
    assert "cam1" in store.errors and seen == []
    store.apply({"cameras": {"cam1": {"threshold": 0.8}}}, version=2)
    assert store.errors == {} and seen == [2]


def test_defaults_apply_to_unlisted_cameras(tmp_path):
    store = ConfigStore(tmp_path / "cfg.json")
    store.apply({"defaults": {"threshold": 0.7}}, version=1)
    assert store.for_camera("anything").threshold == 0.7


def test_survives_restart_and_corrupt_file(tmp_path):
    path = tmp_path / "cfg.json"
    store = ConfigStore(path)
    store.apply({"cameras": {"cam1": {"threshold": 0.66}}}, version=7)
    store.apply({"cameras": {"cam1": {"threshold": 9}}}, version=8)
    again = ConfigStore(path)
    assert again.for_camera("cam1").threshold == 0.66 and again.version == 7
    assert "cam1" in again.errors
    path.write_text("{not json")
    fresh = ConfigStore(path)
    assert fresh.for_camera("cam1") == CameraConfig()
    assert (tmp_path / "cfg.json.corrupt").exists()


def test_reported_mirrors_desired_paths(tmp_path):
    store = ConfigStore(tmp_path / "cfg.json")
    desired = {"cameras": {"cam1": {"threshold": 0.6}, "cam2": {"threshold": 3}}}
    store.apply(desired, version=1)
    reported = store.reported_state(desired)
    assert reported["cameras"]["cam1"] == {"threshold": 0.6}
    assert "cam2" not in reported["cameras"]  # refused: stays in the shadow's delta
    assert len(json.dumps(reported)) < 8192


def test_merge_helpers():
    assert merge_state({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}}) == {"a": {"c": 2, "d": 3}}
    assert project({"a": {"b": 1, "c": 2}, "x": 1}, {"a": {"b": True}}) == {"a": {"b": 1}}


# --- the local shadow service's document rules (pure, no broker) --------------------------------------
def test_shadow_store_versions_delta_and_null_delete(tmp_path):
    shadows = ShadowStore(tmp_path / "shadows.json")
    accepted, documents, delta = shadows.update("gw1", "vigia-config",
                                                {"state": {"desired": {"cameras": {"cam1": {"threshold": 0.6}}}}})
    assert accepted["version"] == 1 and documents["previous"] is None
    assert delta["state"] == {"cameras": {"cam1": {"threshold": 0.6}}}
    assert "timestamp" in delta["metadata"]["cameras"]["cam1"]["threshold"]
    # a reported-only update never publishes a delta, even while one remains
    reported = {"state": {"reported": {"cameras": {"cam1": {"threshold": 0.5}}}}}
    _, _, delta = shadows.update("gw1", "vigia-config", reported)
    assert delta is None
    got = shadows.get("gw1", "vigia-config")
    assert got["version"] == 2 and got["state"]["delta"] == {"cameras": {"cam1": {"threshold": 0.6}}}
    with pytest.raises(ShadowError) as conflict:
        shadows.update("gw1", "vigia-config", {"state": {"desired": {"x": 1}}, "version": 1})
    assert conflict.value.code == 409
    shadows.update("gw1", "vigia-config", {"state": {"reported": {"cameras": {"cam1": {"threshold": 0.6}}}}})
    assert "delta" not in shadows.get("gw1", "vigia-config")["state"]
    shadows.update("gw1", "vigia-config", {"state": {"desired": {"cameras": {"cam1": {"threshold": None}}}}})
    assert "desired" not in shadows.get("gw1", "vigia-config")["state"]  # emptied by null-delete
    assert ShadowStore(tmp_path / "shadows.json").get("gw1", "vigia-config")["version"] == 4  # persisted
    shadows.delete("gw1", "vigia-config")
    with pytest.raises(ShadowError) as missing:
        shadows.get("gw1", "vigia-config")
    assert missing.value.code == 404
    accepted, _, _ = shadows.update("gw1", "vigia-config", {"state": {"reported": {"a": 1}}})
    assert accepted["version"] == 5  # a re-created shadow continues the version


def test_shadow_store_rejects_oversize_and_bad_requests():
    shadows = ShadowStore()
    with pytest.raises(ShadowError) as big:
        shadows.update("gw1", "s", {"state": {"desired": {"blob": "x" * 9000}}})
    assert big.value.code == 413
    for bad in ({}, {"state": 3}, {"state": {"delta": {}}}, []):
        with pytest.raises(ShadowError) as err:
            shadows.update("gw1", "s", bad)
        assert err.value.code == 400


# --- whole documents, summarised refusals, bounds ---------------------------------------------------------
def test_full_document_rebuilds_from_base_and_keeps_last_good_on_refusal(tmp_path):
    base = GatewayConfig(cameras={"cam0": CameraConfig(sample_fps=1)})
    store = ConfigStore(tmp_path / "cfg.json", initial=base)
    store.apply({"cameras": {"cam1": {"threshold": 0.6, "sample_fps": 2}, "cam2": {"threshold": 0.7}}}, version=1)
    # the whole desired state: cam1 lost sample_fps, cam2 is gone, cam0 comes from the gateway's own file
    result = store.apply({"defaults": {"sample_fps": 3}, "cameras": {"cam1": {"threshold": 0.6}}}, version=2,
                         full=True)
    assert result.ok and store.version == 2
    assert store.for_camera("cam1").sample_fps == 3 and store.for_camera("cam1").threshold == 0.6
    assert "cam2" not in store.config.cameras and store.for_camera("cam2").sample_fps == 3
    assert store.for_camera("cam0").sample_fps == 1
    # a refused camera or defaults keeps what runs; errors are exactly this document's
    result = store.apply({"defaults": {"sample_fps": 99}, "cameras": {"cam1": {"threshold": 5}}}, version=3, full=True)
    assert set(result.errors) == {"defaults", "cam1"} == set(store.errors)
    assert store.for_camera("cam1").threshold == 0.6 and store.config.defaults.sample_fps == 3
    store.apply({"cameras": {"cam1": {"threshold": 0.6}}}, version=4, full=True)
    assert store.errors == {} and store.config.defaults.sample_fps == 5  # defaults key deleted: back to base


def test_unknown_keys_make_one_error_and_keep_the_last_good_config(tmp_path):
    store = ConfigStore(tmp_path / "cfg.json")
    store.apply({"cameras": {"cam1": {"threshold": 0.6}}}, version=1)
    poison = {f"key{i}": {"deep": i} for i in range(400)}
    result = store.apply(poison | {"cameras": {"cam1": {f"f{i}": 1 for i in range(400)} | {"threshold": 0.9}}},
                         version=2)
    assert set(result.errors) == {"_unknown", "cam1"}
    assert result.errors["_unknown"] == ("400 unknown fields refused (expected schema_version, defaults, cameras): "
                                         "'key0', 'key1', 'key2', 'key3', 'key4' (+395 more)")
    assert result.errors["cam1"].endswith("(+395 more)") and len(result.errors["cam1"]) <= 600
    assert store.for_camera("cam1").threshold == 0.6 and store.version == 1


def test_delta_names_the_refusals_it_did_not_settle(tmp_path):
    store = ConfigStore(tmp_path / "cfg.json")
    store.apply({"cameras": {"cam1": {"threshold": 5}}, "junk": 1}, version=1)
    result = store.apply({"cameras": {"cam2": {"threshold": 0.7}}}, version=2)
    assert result.unsettled == {"cam1", "_unknown"}  # maybe deleted since: the caller re-reads the document
    result = store.apply({"cameras": {"cam1": {"threshold": 0.6}}, "junk": 1}, version=3)
    assert result.unsettled == set() and set(store.errors) == {"_unknown"}


def test_camera_ids_and_counts_are_bounded(tmp_path):
    store = ConfigStore(tmp_path / "cfg.json")
    store.apply({"cameras": {"cam1": {"threshold": 0.6}}}, version=1)
    bad_ids = {"../etc": {}, "-x": {}, "a..b": {}, "_document": {"threshold": 0.7}}
    result = store.apply({"cameras": bad_ids}, version=2)
    assert set(result.errors) == {"_invalid_cameras"}
    assert result.errors["_invalid_cameras"].startswith("4 camera ids not valid")
    result = store.apply({"cameras": {f"c{i}": {"threshold": 0.7} for i in range(65)}}, version=3, full=True)
    assert result.errors == {"cameras": "cameras: 65 cameras listed, at most 64"}
    assert store.for_camera("cam1").threshold == 0.6 and store.config.cameras.keys() == {"cam1"}


def test_stored_errors_are_bounded_on_load(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"version": 3, "config": GatewayConfig().model_dump(mode="json"),
                                "errors": {f"k{i}" * 40: "x" * 5000 for i in range(500)}}))
    store = ConfigStore(path)
    assert len(store.errors) == 100 and max(len(k) for k in store.errors) == 64
    assert max(len(v) for v in store.errors.values()) == 600


def test_rereading_an_unchanged_document_wakes_no_listener(tmp_path):
    store = ConfigStore(tmp_path / "cfg.json")
    seen = []
    store.add_listener(lambda config, version: seen.append(version))
    desired = {"cameras": {"cam1": {"threshold": 0.6}}}
    store.apply(desired, version=4, full=True)
    store.apply(desired, version=4, full=True)
    store.apply(desired, version=5, full=True)  # another key changed and changed back: same config
    assert seen == [4] and store.version == 5
