"""A run or a comparison as JSON, for machines.

Both documents carry `schema_version`; docs/report.schema.json and docs/comparison.schema.json
describe them (the tests validate every sample run against the first). The version moves when
a key changes meaning or goes away; a new key does not move it, so readers ignore keys they do
not know.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from alumnos_cli.report.attribution import Costs
from alumnos_cli.report.compare import MIN_EFFECT, MIN_RUNS, Comparison
from alumnos_cli.report.model import RunReport

SCHEMA_VERSION = 1


def run_json(report: RunReport) -> str:
    """The run: its metadata as recorded, figures, ceiling, checks, time series, server side,
    proof."""
    little = report.little
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run": report.name,
        "meta": dict(report.record.recorded_meta),
        "figures": asdict(report.figures),
        "ceiling": asdict(report.ceiling) if report.ceiling else None,
        "littles_law": asdict(little) | {"consistent": little.consistent} if little else None,
        "load_generator": asdict(report.generator) if report.generator else None,
        "server": asdict(report.server) if report.server else None,
        "patterns": dict(report.proof.document) if report.proof else None,
        # One list per figure, one value per second (null: k6 reported none that second).
        "timeseries": asdict(report.timeseries) if report.timeseries else None,
        # Per endpoint, per status and errors by type; null with the line that says why.
        "breakdown": asdict(report.breakdown) | {"requests": report.breakdown.requests}
        if report.breakdown else None,
        "breakdown_missing": report.breakdown_missing,
        # A run split over several k6 hosts (bench --generator): one entry per host.
        "generators": [asdict(host) | {"saturated": host.saturated}
                       for host in report.meta.generator.hosts]
        if report.meta.generator and report.meta.generator.hosts else None,
    }
    meta = report.meta
    # What runs record since their answers are verified and their costs measured.
    for key, value in (("verification", meta.verification), ("costs", meta.costs),
                       ("cross_check", meta.cross_check), ("placement", meta.placement)):
        if value is not None:
            document[key] = _costs(value) if isinstance(value, Costs) else asdict(value)
    if meta.balancer is not None:
        document["balancer"] = asdict(meta.balancer) | {
            "refused_total": meta.balancer.refused_total,
            "refused_share": meta.balancer.refused_share,
            "ejections": [asdict(e) for e in meta.balancer.ejections]}
    return json.dumps(document, indent=2) + "\n"


def _costs(costs: Costs) -> dict[str, Any]:
    """What each part spent, and per 1,000 requests, as the cost table shows it."""
    return asdict(costs) | {
        "per_1000_ms": {part: costs.per_1000(part) for part in costs.cpu_seconds},
        "service_per_1000_ms": costs.service_per_1000}


def comparison_json(result: Comparison) -> str:
    """Both sides' runs, each metric's means, ranges, difference and verdict, the overall
    verdict, and the notes on how to read it."""
    return json.dumps({
        "schema_version": SCHEMA_VERSION,
        "baseline": {"label": result.baseline.label,
                     "runs": [run.name for run in result.baseline.runs]},
        "candidate": {"label": result.candidate.label,
                      "runs": [run.name for run in result.candidate.runs]},
        "verdict": result.overall,
        "like_for_like": not result.mismatches,
        "mismatches": list(result.mismatches),
        "enough_runs": not result.single_runs,
        "rule": {"min_runs": MIN_RUNS, "min_effect": MIN_EFFECT},
        "rows": [asdict(row) | {"difference": row.difference, "relative": row.relative}
                 for row in result.rows],
        "notes": [asdict(note) for note in result.notes]}, indent=2) + "\n"
