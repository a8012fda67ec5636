"""The k6 scenario scripts as k6 itself reads them (`k6 inspect`): executors, stages, thresholds."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from alumnos_cli.bench.k6 import find_k6
from alumnos_cli.bench.scenarios import (
    SCENARIOS,
    Scenario,
    default_max_error_rate,
    default_p95_ms,
    scripts_dir,
    stages,
)
from alumnos_service.paths import FIRST_PAGE, PAGE_PATH


def inspect(script: str, **env: str) -> dict[str, Any]:
    flags = [item for key, value in env.items() for item in ("-e", f"{key}={value}")]
    out = subprocess.run([str(find_k6()), "inspect", *flags, str(scripts_dir() / script)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _seconds(stages: list[dict[str, Any]]) -> int:
    total = 0
    for stage in stages:
        match = re.fullmatch(r"(\d+)s", stage["duration"])
        assert match is not None, stage
        total += int(match[1])
    return total


@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
@pytest.mark.parametrize("model", ["closed", "open"])
def test_every_scenario_is_a_valid_k6_test_in_both_models(scenario: Scenario,
                                                          model: str) -> None:
    env = {"VUS": "40", "DURATION": "50s"} | ({"RATE": "300"} if model == "open" else {})
    options = inspect(scenario.script, **env)
    [config] = options["scenarios"].values()
    executor = config["executor"]
    if model == "closed":
        assert executor in {"constant-vus", "ramping-vus"}
    else:
        assert executor in {"constant-arrival-rate", "ramping-arrival-rate"}
        assert config["maxVUs"] == 40
    if executor.startswith("ramping"):
        assert _seconds(config["stages"]) == 50  # the ramps never change the run's length
        peak = max(stage["target"] for stage in config["stages"])
        assert peak == (300 if model == "open" else 40)
    else:
        assert config["duration"] == "50s"
    assert {"p(99)", "p(99.9)"} <= set(options["summaryTrendStats"])


def test_default_thresholds_are_the_ones_bench_records() -> None:
    # One file for both: k6/lib/defaults.json, read by k6 and by alumnos bench.
    options = inspect("load.js")
    p95, errors = default_p95_ms(), default_max_error_rate()
    # On the scenario's own requests: setup()'s carry no scenario tag.
    assert options["thresholds"] == {"http_req_duration{scenario:load}": [f"p(95)<{p95:g}"],
                                     "http_req_failed{scenario:load}": [f"rate<{errors:g}"],
                                     "wrong_answers": ["count<1"]}


@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_k6_keeps_only_the_tags_and_bodies_it_needs(scenario: Scenario) -> None:
    options = inspect(scenario.script)
    assert sorted(options["systemTags"]) == ["check", "error_code", "expected_response",
                                             "name", "scenario", "status"]
    assert options["discardResponseBodies"] is True  # a request that verifies asks for its own


def test_the_k6_scripts_ask_for_the_services_own_paths() -> None:
    # JavaScript cannot import the service's paths: the scripts' copies must agree with them.
    config = (scripts_dir() / "lib" / "config.js").read_text()
    assert f"export const PAGE_PATH = '{PAGE_PATH}';" in config
    endpoint = (scripts_dir() / "endpoint.js").read_text()
    assert f"|| '{FIRST_PAGE}'" in endpoint


def test_every_scenario_records_the_stages_k6_runs() -> None:
    shapes = json.loads((scripts_dir() / "lib" / "shapes.json").read_text())
    for scenario in SCENARIOS.values():
        recorded = stages(scenario)
        assert recorded == (shapes[scenario.profile] if scenario.profile else [])


def test_thresholds_come_from_the_flags() -> None:
    options = inspect("load.js", THRESHOLD_P95_MS="250", THRESHOLD_ERROR_RATE="0.001")
    assert options["thresholds"] == {"http_req_duration{scenario:load}": ["p(95)<250"],
                                     "http_req_failed{scenario:load}": ["rate<0.001"],
                                     "wrong_answers": ["count<1"]}


@pytest.mark.parametrize("script", ["spike_tests.js", "load.js", "stress.js"])
@pytest.mark.parametrize("seconds", [1, 3, 7, 10, 61])
def test_ramped_runs_last_exactly_the_duration_asked(script: str, seconds: int) -> None:
    options = inspect(script, VUS="100", DURATION=f"{seconds}s")
    [config] = options["scenarios"].values()
    assert _seconds(config["stages"]) == seconds


def test_stress_steps_up_and_stops_when_a_threshold_breaks() -> None:
    options = inspect("stress.js", VUS="100", DURATION="100s")
    stages = options["scenarios"]["stress"]["stages"]
    assert [s["target"] for s in stages][1::2] == [20, 40, 60, 80, 100]
    for rules in options["thresholds"].values():
        assert all(rule["abortOnFail"] for rule in rules)


@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_the_targets_judge_the_scenarios_own_requests(scenario: Scenario) -> None:
    # A sub-metric on another name would hold no sample, and the report would fall back to
    # the whole metric, setup()'s requests included.
    options = inspect(scenario.script)
    [name] = options["scenarios"]
    assert {metric for metric in options["thresholds"] if "{" in metric} == {
        f"http_req_failed{{scenario:{name}}}", f"http_req_duration{{scenario:{name}}}"}
