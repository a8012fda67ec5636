"""A capacity sweep: the same scenario at each level (`--sweep` VUs, `--rate-sweep` requests/s),
one short run each, a cool-down between, all kept in one folder that `alumnos report` reads
as a sweep (report.capacity)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from alumnos_cli.bench.k6 import LiveSample
from alumnos_cli.bench.request import MAX_RATE, MAX_VUS, BenchRequest, validate
from alumnos_cli.bench.run import BenchResult, run_bench
from alumnos_cli.errors import InvalidOption
from alumnos_cli.files import write_json
from alumnos_cli.report.capacity import FIT_MIN_LEVELS
from alumnos_cli.report.capacity_read import sweep_record
from alumnos_cli.runfolder import SWEEP_FILE, new_run_dir
from alumnos_cli.settings import Settings

MAX_LEVELS = 20
MAX_COOL_DOWN_SECONDS = 300


@dataclass(frozen=True)
class SweepPlan:
    """What to sweep: the levels, which model they are of, the pause between them."""

    levels: tuple[int, ...]
    model: str  # closed: levels are VUs; open: requests/s
    cool_down_seconds: int


def parse_levels(text: str, flag: str) -> tuple[int, ...]:
    """'25,50,100,200' as increasing positive whole numbers, at least FIT_MIN_LEVELS."""
    try:
        levels = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise InvalidOption(flag, f"{flag} takes whole numbers separated by commas, like "
                            f"25,50,100,200; got {text!r}") from None
    if any(level <= 0 for level in levels):
        raise InvalidOption(flag, f"{flag} levels must be above 0, got {text!r}")
    if any(a >= b for a, b in itertools.pairwise(levels)):
        raise InvalidOption(flag, f"{flag} levels must increase, got {text!r}")
    if not FIT_MIN_LEVELS <= len(levels) <= MAX_LEVELS:
        raise InvalidOption(flag, f"{flag} takes {FIT_MIN_LEVELS} to {MAX_LEVELS} levels (the "
                            f"fit needs {FIT_MIN_LEVELS}), got {len(levels)}")
    highest = MAX_VUS if flag == "--sweep" else MAX_RATE
    if levels[-1] > highest:
        raise InvalidOption(flag, f"{flag} levels must be at most {highest:,}, got "
                            f"{levels[-1]:,}")
    return levels


def validate_cool_down(seconds: int) -> None:
    """Refuse a cool-down that is negative or longer than five minutes."""
    if not 0 <= seconds <= MAX_COOL_DOWN_SECONDS:
        raise InvalidOption("--cool-down", f"--cool-down must be 0 to "
                            f"{MAX_COOL_DOWN_SECONDS} seconds, got {seconds}")


def level_request(request: BenchRequest, plan: SweepPlan, level: int) -> BenchRequest:
    """The run of one level: VUs in the closed model; in the open model the rate, with as
    many VUs as the request allowed for the pool."""
    if plan.model == "closed":
        return replace(request, vus=level)
    return replace(request, rate=level)


def run_sweep(settings: Settings, request: BenchRequest, plan: SweepPlan,
              on_sample: Callable[[LiveSample], None] | None = None,
              on_level: Callable[[int, int], None] | None = None) -> tuple[Path, list[BenchResult]]:
    """Each level in turn, its run folder inside the sweep's; sweep.json says after each
    level which runs it has, so a sweep stopped part-way keeps the levels it made."""
    for level in plan.levels:
        validate(level_request(request, plan, level))
    folder = new_run_dir(settings.results_dir, f"sweep-{request.scenario}")
    record = sweep_record(request.scenario, plan.model, request.duration_seconds, plan.levels,
                          plan.cool_down_seconds)
    write_json(folder / SWEEP_FILE, record)
    inside = replace(settings, results_dir=folder)
    results: list[BenchResult] = []
    try:
        for index, level in enumerate(plan.levels):
            if index and plan.cool_down_seconds:
                time.sleep(plan.cool_down_seconds)  # queues drain, connections close
            if on_level is not None:
                on_level(index + 1, level)
            result = run_bench(inside, level_request(request, plan, level), on_sample)
            results.append(result)
            record["runs"].append({"level": level, "run": result.run_dir.name})
            write_json(folder / SWEEP_FILE, record)
    finally:
        record["status"] = "finished" if len(results) == len(plan.levels) else "partial"
        write_json(folder / SWEEP_FILE, record)
    return folder, results
