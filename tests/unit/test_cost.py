"""vigia cost: the arithmetic exact on a tiny hand-computed case, edge-filtered always below every clip,
the stack's parameters read into the usage, and the price file checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.cost import Usage, compare, estimate, load_prices, stack_usage
from cloud.cost.prices import REQUIRED, default_price_file
from cloud.cost.stack import TEMPLATE, load_template


def price_file(tmp_path: Path, **usd: float) -> Path:
    entries = {k: {"usd": usd.get(k, 0.0), "unit": "u", "source": "test", "as_of": "2026-11", "verified": True}
               for k in REQUIRED}
    path = tmp_path / "prices-2026-11.json"
    path.write_text(json.dumps({"region": "test-1", "compiled": "2026-11-30", "prices": entries}))
    return path


TINY = Usage(cameras=1, clips_per_day=10, candidate_rate=0.1, confirm_rate=0.5, verifier_s=2, clip_mb=1024,
             lambda_memory_mb=1024, cameras_per_gateway=1)


def test_tiny_case_by_hand(tmp_path: Path) -> None:
    prices = load_prices(price_file(tmp_path, kvs_ingest_gb=0.01, lambda_gb_s=0.001, sns_publish=0.5,
                                    iot_connection_minute=0.0001))
    # edge: 1 camera × 10 clips × 30 days × 0.1 = 30 clips of 1 GB; 30 × 2 s × 1 GB = 60 GB-s; 15 confirmed
    # published; 1 gateway connected 43,200 minutes.
    result = compare(TINY, prices)
    edge, every = result["edge"], result["all"]
    assert edge["clips_sent"] == 30 and every["clips_sent"] == 300
    assert edge["services"]["Kinesis Video"] == pytest.approx(30 * 0.01)
    assert edge["services"]["Lambda"] == pytest.approx(60 * 0.001)
    assert edge["services"]["SNS"] == pytest.approx(15 * 0.5)
    assert edge["services"]["IoT Core"] == pytest.approx(43_200 * 0.0001)
    assert edge["fleet_usd"] == pytest.approx(0.30 + 0.06 + 7.5 + 4.32)
    assert every["fleet_usd"] == pytest.approx(3.0 + 0.6 + 75.0 + 4.32)
    assert result["saving_usd"] == pytest.approx(78.6 - 7.86)
    assert edge["per_camera_usd"] == pytest.approx(edge["fleet_usd"])


def test_ecs_gpu_bills_at_least_the_tasks_that_run_all_month(tmp_path: Path) -> None:
    prices = load_prices(price_file(tmp_path, ecs_gpu_instance_hour=1.0))
    items = estimate(Usage(**{**TINY.as_dict(), "runtime": "ecs-gpu", "ecs_min_tasks": 1}), prices, "edge")
    (gpu,) = [i for i in items if i.service == "ECS GPU"]
    assert (gpu.quantity, gpu.usd) == (720, 720.0)  # 60 busy seconds a month: the one task's 720 h dominate
    busy = Usage(**{**TINY.as_dict(), "runtime": "ecs-gpu", "clips_per_day": 100_000, "candidate_rate": 1.0,
                    "verifier_s": 0.5, "ecs_utilization": 0.5})
    (gpu,) = [i for i in estimate(busy, prices, "all") if i.service == "ECS GPU"]
    assert gpu.quantity == pytest.approx(100_000 * 30 * 0.5 / 3600 / 0.5)


@pytest.mark.parametrize("runtime", ["lambda", "ecs-gpu"])
def test_edge_filtered_costs_less_than_every_clip(runtime: str) -> None:
    prices = load_prices()
    usage = Usage(cameras=25, runtime=runtime, ecs_min_tasks=0 if runtime == "ecs-gpu" else 1)
    result = compare(usage, prices)
    assert result["edge"]["fleet_usd"] < result["all"]["fleet_usd"]
    for service in ("Kinesis Video", "S3", "DynamoDB", "IoT Core"):
        assert result["edge"]["services"][service] < result["all"]["services"][service]
    same = compare(Usage(cameras=25, candidate_rate=1.0, runtime=runtime), prices)
    assert same["edge"]["fleet_usd"] == pytest.approx(same["all"]["fleet_usd"])


def test_stack_defaults_and_parameters_file(tmp_path: Path) -> None:
    doc = load_template(TEMPLATE)
    usage = stack_usage()
    assert usage.retention_days == float(doc["Parameters"]["EventTtlDays"]["Default"])
    assert usage.rejected_media_days == float(doc["Parameters"]["RejectedMediaDays"]["Default"])
    assert usage.lambda_memory_mb == float(doc["Resources"]["VerifierFunction"]["Properties"]["MemorySize"])
    assert usage.gsi_count == len(doc["Resources"]["EventsTable"]["Properties"]["GlobalSecondaryIndexes"])
    alarms = [r for r in doc["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert usage.alarm_metrics == len(alarms) + 2  # the anomaly-detection alarm counts as 3
    assert usage.dashboards == 1
    params = tmp_path / "params.json"
    params.write_text(json.dumps([{"ParameterKey": "EventTtlDays", "ParameterValue": "14"}]))
    assert stack_usage(parameters=params).retention_days == 14.0
    params.write_text(json.dumps({"NoSuchParameter": "1"}))
    with pytest.raises(ValueError, match="NoSuchParameter"):
        stack_usage(parameters=params)


def test_price_file_is_dated_and_complete(tmp_path: Path) -> None:
    book = load_prices()
    assert book.path == default_price_file() and book.path.name.startswith("prices-")
    assert set(REQUIRED) <= set(book.usd)
    bad = json.loads(price_file(tmp_path).read_text())
    del bad["prices"]["sns_publish"]
    (tmp_path / "prices-2026-12.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="sns_publish"):
        load_prices(tmp_path / "prices-2026-12.json")
    (tmp_path / "cheap.json").write_text("{}")
    with pytest.raises(ValueError, match="prices-YYYY-MM"):
        load_prices(tmp_path / "cheap.json")
    with pytest.raises(ValueError, match="candidate_rate"):
        Usage(candidate_rate=1.5).validate()


def test_cost_command_json(capsys) -> None:
    from vigia.cli import main

    assert main(["cost", "--cameras", "3", "--candidate-rate", "0.02", "--runtime", "lambda", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["usage"]["cameras"] == 3 and out["usage"]["candidate_rate"] == 0.02
    assert out["sources"]["cameras"] == "command line"
    assert out["sources"]["retention_days"] == "stack template defaults"
    assert out["edge"]["clips_sent"] == 3 * 200 * 30 * 0.02
    assert main(["cost", "--cameras", "3"]) == 0
    text = capsys.readouterr().out
    assert "edge-filtered" in text and "total" in text and "not verified" in text
