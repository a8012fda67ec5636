"""The breakdown of a run: p99.9, setup() left out of the figures, per endpoint and status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alumnos_cli.report.read import read_record
from alumnos_cli.report.summary import summary_figures

DATA = Path(__file__).parent / "data"
RUNS = DATA / "runs"


def _summary(**durations: float) -> dict[str, Any]:
    trend = {"avg": 10.0, "min": 1.0, "med": 9.0, "max": 90.0, "p(90)": 20.0, "p(95)": 30.0,
             "p(99)": 50.0} | durations
    return {"metrics": {"http_reqs": {"values": {"count": 1000, "rate": 100.0}},
                        "http_req_duration": {"values": trend},
                        "http_req_failed": {"values": {"rate": 0.0}}}}


def test_p999_is_read_when_k6_reported_it() -> None:
    latency = summary_figures(_summary(**{"p(99.9)": 80.0}), "summary.json").latency
    assert latency.p999 == 80.0


def test_a_run_recorded_before_p999_has_none() -> None:
    assert summary_figures(_summary(), "summary.json").latency.p999 is None
    assert read_record(RUNS / "20261127T022841Z-spike").figures.latency.p999 is None
    assert json.loads((DATA / "golden" / "20261127T022841Z-spike.json").read_text()
                      )["figures"]["latency"]["p999"] is None
