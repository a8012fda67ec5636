"""`alumnos bench --sweep` on a real stack: one run per level in the sweep's folder, each with
its server side from Prometheus, and the sweep shown by `report` in every format; a sweep that
stops part-way keeps the levels it made."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from alumnos_cli.bench import sweep as sweep_module
from alumnos_cli.errors import ExitCode, K6Error
from alumnos_cli.main import app
from alumnos_cli.report.capacity_read import read_sweep
from alumnos_cli.report.read import read_run
from alumnos_cli.settings import Settings
from alumnos_cli.stack import local
from alumnos_cli.stack.options import ServiceOptions
from alumnos_cli.stack.ports import free_block, free_port

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture
def options() -> ServiceOptions:
    return ServiceOptions(port=free_block(18500, 3), replicas=2, workers=1, blocking_threads=2,
                          prometheus_port=free_port(19390))


def _sweep(settings: Settings, *args: str) -> Any:
    return runner.invoke(app, ["bench", "--sweep", "1,2,4,8", "--duration", "2s",
                               "--cool-down", "0", *args, "--results-dir",
                               str(settings.results_dir), "--state-dir",
                               str(settings.state_dir)], env={"COLUMNS": "200"})


def _the_sweep(settings: Settings) -> Path:
    folders = sorted(settings.results_dir.glob("*-sweep-spike"))
    assert len(folders) == 1, folders
    return folders[0]


def test_a_sweep_runs_each_level_and_reports_them_with_the_stacks_limits(
        stack: local.UpResult, settings: Settings, tmp_path: Path) -> None:
    result = _sweep(settings)
    assert result.exit_code == 0, result.output
    folder = _the_sweep(settings)
    assert f"sweep stored in {folder}" in " ".join(result.output.split())
    record = json.loads((folder / "sweep.json").read_text())
    assert record["status"] == "finished" and record["levels"] == [1, 2, 4, 8]
    assert [row["level"] for row in record["runs"]] == [1, 2, 4, 8]
    sweep = read_sweep(folder)
    for level, row in zip(sweep.levels, record["runs"], strict=True):
        meta = json.loads((folder / row["run"] / "meta.json").read_text())
        assert meta["vus"] == level.level  # each level's own run, at its own VUs
        assert read_run(folder / row["run"]).figures.requests > 0  # it served its load
        used = {u.component for u in level.usage}
        # From the stack's Prometheus: the replicas, HAProxy, its slots and queue; k6, the machine.
        assert {"replicas", "haproxy", "balancer slots", "balancer queue", "k6",
                "machine"} <= used, used
    slots = next(u for u in sweep.levels[0].usage if u.component == "balancer slots")
    # The limit is the replicas' maxconn in HAProxy's own configuration, both together.
    config = Path(stack.state.service.service_dir or "") / "haproxy.cfg"
    text = config.read_text()
    each = re.search(r"^\s*default-server .*\bmaxconn (\d+)", text, re.MULTILINE)
    servers = re.findall(r"^\s*server replica-", text, re.MULTILINE)
    assert each is not None and len(servers) == 2
    assert slots.limit == 2 * int(each.group(1))
    for fmt in ("markdown", "json", "html"):
        out = tmp_path / f"sweep.{fmt}"
        shown = runner.invoke(app, ["report", folder.name, "--results-dir",
                                    str(settings.results_dir), "--format", fmt, "-o", str(out)])
        assert shown.exit_code == 0, shown.output
        assert folder.name in out.read_text()


def test_a_sweep_stopped_part_way_keeps_the_levels_it_made(
        stack: local.UpResult, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    real = sweep_module.run_bench
    made: list[int] = []

    def fails_at_the_third(settings: Settings, request: Any, *args: Any) -> Any:
        if len(made) == 2:
            raise K6Error("k6 failed with exit code 107: killed")
        made.append(request.vus)
        return real(settings, request, *args)

    monkeypatch.setattr(sweep_module, "run_bench", fails_at_the_third)
    result = _sweep(settings)
    assert result.exit_code == ExitCode.ERROR, result.output
    folder = _the_sweep(settings)
    record = json.loads((folder / "sweep.json").read_text())
    assert record["status"] == "partial"
    assert [row["level"] for row in record["runs"]] == [1, 2]
    shown = runner.invoke(app, ["report", folder.name, "--results-dir",
                                str(settings.results_dir)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "2 of 4 levels ran" in text and "not run: 4, 8" in text
    # Either the two levels the load made, or fewer if k6 limited one of them on this machine.
    assert re.search(r"no fit: [0-2] level\(s\) the load generator did not limit, the fit "
                     r"needs 4", text), text
