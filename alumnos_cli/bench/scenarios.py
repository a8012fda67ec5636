"""The k6 scenarios: one script each in k6/, their load shapes, and the default targets.

This is the one list of scenarios; every run records the definition it used, so the report
reads old runs with what they ran, not with what the scenarios are today.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from alumnos_cli.errors import K6Error
from alumnos_service.paths import FIRST_PAGE, PAGE_PATH

SHAPES_FILE = "lib/shapes.json"
DEFAULTS_FILE = "lib/defaults.json"


@dataclass(frozen=True)
class Scenario:
    """One k6 script in k6/, and what it does."""

    name: str
    script: str
    shape: str
    description: str
    request_path: str  # what each iteration asks for, as the report shows it
    profile: str | None = None  # its stages in k6/lib/shapes.json; None: constant load
    aborts: bool = False  # stops once a threshold is crossed (k6/lib/config.js)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("smoke", "smoke.js", "constant",
             "a few VUs on random pages over the whole table: does the stack work at all",
             f"{PAGE_PATH}?limit=100&offset=<any page>"),
    Scenario("load", "load.js", "ramp 10%, hold, ramp down 10%",
             "the expected load on the first 20 pages (mostly cached), ramped",
             f"{PAGE_PATH}?limit=100&offset=<the first 20 pages>", "load"),
    Scenario("spike", "spike_tests.js", "jump in 5%, hold, drop in the last 10%",
             "the reference report's test: a sudden jump to the peak on the first page",
             FIRST_PAGE, "spike"),
    Scenario("stress", "stress.js", "5 steps of a fifth of the peak",
             "steps up until the thresholds break; k6 stops once one is crossed",
             f"{PAGE_PATH}?limit=100&offset=<the first 20 pages>", "stress", aborts=True),
    Scenario("soak", "soak.js", "constant, long",
             "a steady load for a long time (--duration 30m+): creep, leaks; 10% deep pages",
             f"{PAGE_PATH}?limit=100&offset=<90% first 20 pages, 10% any>"),
    Scenario("pagination", "pagination.js", "constant",
             "random offsets over the whole table, 10% among the last pages, rows checked",
             f"{PAGE_PATH}?limit=100&offset=<any page, 10% the last ones>"),
    Scenario("cache-cold", "cache_cold.js", "constant",
             "an offset no request asked before, every time: no cache can help",
             f"{PAGE_PATH}?limit=100&offset=<a new one each time>"),
    Scenario("endpoint", "endpoint.js", "constant",
             "one --path, status checks only (ceilings, comparisons)", FIRST_PAGE),
)}

# --scenario's choices, made from the list above (an enum, so that the shell completes them).
ScenarioName = StrEnum("ScenarioName", [(name, name) for name in SCENARIOS])  # type: ignore[misc]


def scripts_dir() -> Path:
    """The scenario scripts: packaged with the wheel, or the source tree's k6/."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "k6", package.parent / "k6"):
        if (candidate / "lib").is_dir():
            return candidate
    raise K6Error("the k6 scenario scripts are missing from this installation",
                  "reinstall alumnos")


@cache
def _k6_json(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((scripts_dir() / name).read_text())
    return document


def stages(scenario: Scenario) -> list[list[float]]:
    """The scenario's stages as k6 runs them: [share of the run, share of the peak]."""
    if scenario.profile is None:
        return []
    return [list(stage) for stage in _k6_json(SHAPES_FILE)[scenario.profile]]


def default_p95_ms() -> float:
    """The p95 threshold when --p95 is not given (k6/lib/defaults.json)."""
    value: float = _k6_json(DEFAULTS_FILE)["p95_ms"]
    return value


def default_max_error_rate() -> float:
    """The error-rate threshold when --max-error-rate is not given."""
    value: float = _k6_json(DEFAULTS_FILE)["max_error_rate"]
    return value


def default_verify_sample() -> int:
    """One response in this many per VU is checked in full when --verify-sample is not given."""
    return int(_k6_json(DEFAULTS_FILE)["verify_sample"])


def definition(scenario: Scenario, path: str | None) -> dict[str, Any]:
    """What a run records of its scenario, so that the report never has to look it up."""
    return {"script": scenario.script, "shape": scenario.shape,
            "description": scenario.description,
            "request_path": path or scenario.request_path, "stages": stages(scenario)}
