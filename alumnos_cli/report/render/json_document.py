"""A run or a comparison as JSON, for machines."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from alumnos_cli.report.compare import Comparison
from alumnos_cli.report.model import RunReport


def run_json(report: RunReport) -> str:
    """The run: its metadata as recorded, figures, ceiling, checks, server side, proof."""
    little = report.little
    document: dict[str, Any] = {
        "run": report.name,
        "meta": dict(report.record.recorded_meta),
        "figures": asdict(report.figures),
        "ceiling": asdict(report.ceiling) if report.ceiling else None,
        "littles_law": asdict(little) | {"consistent": little.consistent} if little else None,
        "load_generator": asdict(report.generator) if report.generator else None,
        "server": asdict(report.server) if report.server else None,
        "patterns": dict(report.proof.document) if report.proof else None,
    }
    meta = report.meta
    # What runs record since their answers are verified and their costs measured.
    for key, value in (("verification", meta.verification), ("costs", meta.costs),
                       ("cross_check", meta.cross_check), ("placement", meta.placement)):
        if value is not None:
            document[key] = asdict(value)
    if meta.balancer is not None:
        document["balancer"] = asdict(meta.balancer) | {
            "refused_total": meta.balancer.refused_total,
            "refused_share": meta.balancer.refused_share,
            "ejections": [asdict(e) for e in meta.balancer.ejections]}
    return json.dumps(document, indent=2) + "\n"


def comparison_json(result: Comparison) -> str:
    """Both sides' runs and each metric's means, ranges, difference and verdict."""
    return json.dumps({
        "baseline": {"label": result.baseline.label,
                     "runs": [run.name for run in result.baseline.runs]},
        "candidate": {"label": result.candidate.label,
                      "runs": [run.name for run in result.candidate.runs]},
        "rows": [asdict(row) | {"difference": row.difference, "relative": row.relative}
                 for row in result.rows]}, indent=2) + "\n"
