"""Several k6 instances' summaries as one, in k6's own summary format (the report reads it as
it reads any run), and the run's thresholds judged once, on the merged figures.

Exact: counters, rates (passes and fails), checks, the minimum and maximum, the average
(weighted by each instance's samples) and the run's length. Percentiles cannot be added up:
they come from the merged distribution, k6's native histograms in Prometheus (within one
bucket, 9%); without Prometheus, each is the highest of the instances' own, which the merged
percentile never exceeds (it lies between the lowest and the highest of them), and the
summary says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from alumnos_cli.report.summary import SCENARIO_TAG

# The trend statistics k6/lib/config.js asks k6 for, as quantiles.
QUANTILE_STATS = {"med": 0.5, "p(50)": 0.5, "p(90)": 0.9, "p(95)": 0.95, "p(99)": 0.99,
                  "p(99.9)": 0.999}
FROM_PROMETHEUS = "merged distribution (k6's native histograms in Prometheus)"
UPPER_BOUND = ("the highest of the generators' own (no Prometheus to merge their "
               "distributions: the merged percentile is at most this)")
_EXPRESSION = re.compile(r"\s*(\w+(?:\([\d.]+\))?)\s*(<=|>=|===|==|!=|<|>)\s*(-?[\d.eE+]+)\s*")

# What a metric's merged quantiles are, by metric name, or None where Prometheus has none.
Quantiles = Callable[[str], dict[str, float] | None]


def merge_summaries(summaries: Mapping[str, Mapping[str, Any]],
                    quantiles: Quantiles | None = None) -> dict[str, Any]:
    """One summary of the whole run from each generator's (by generator name)."""
    parts = list(summaries.values())
    duration_ms = max(float(p.get("state", {}).get("testRunDurationMs", 0)) for p in parts)
    names = sorted({name for part in parts for name in part.get("metrics", {})})
    metrics = {}
    used = set()
    for name in names:
        found = [part["metrics"][name] for part in parts if name in part.get("metrics", {})]
        weights = [_samples(part, name) for part in parts if name in part.get("metrics", {})]
        merged, source = _metric(name, found, weights, duration_ms / 1000, quantiles)
        metrics[name] = merged
        used.add(source)
    judge_thresholds(metrics)
    return {"metrics": metrics, "state": {"testRunDurationMs": duration_ms},
            "root_group": _group([p.get("root_group") or {} for p in parts]),
            "options": parts[0].get("options", {}),
            "alumnos": {"merged_from": list(summaries),
                        "percentiles": UPPER_BOUND if UPPER_BOUND in used else FROM_PROMETHEUS}}


def _metric(name: str, found: list[Mapping[str, Any]], weights: list[float], seconds: float,
            quantiles: Quantiles | None) -> tuple[dict[str, Any], str]:
    kind = found[0].get("type")
    values = [dict(m.get("values", {})) for m in found]
    thresholds = {expr: {"ok": True} for m in found for expr in (m.get("thresholds") or {})}
    merged: dict[str, Any] = {"type": kind, "contains": found[0].get("contains", "default")}
    source = FROM_PROMETHEUS
    if kind == "counter":
        count = sum(float(v.get("count", 0)) for v in values)
        merged["values"] = {"count": count, "rate": count / seconds if seconds else 0.0}
    elif kind == "rate":
        passes = sum(int(v.get("passes", 0)) for v in values)
        fails = sum(int(v.get("fails", 0)) for v in values)
        merged["values"] = {"passes": passes, "fails": fails,
                            "rate": passes / (passes + fails) if passes + fails else 0.0}
    elif kind == "gauge":  # VUs: each generator's add up
        merged["values"] = {key: sum(float(v.get(key, 0)) for v in values)
                            for key in ("value", "min", "max")}
    else:
        merged["values"], source = _trend(name, values, weights, quantiles)
    if thresholds:
        merged["thresholds"] = thresholds
    return merged, source


def _trend(name: str, values: list[dict[str, Any]], weights: list[float],
           quantiles: Quantiles | None) -> tuple[dict[str, float], str]:
    total = sum(weights)
    merged = {"avg": sum(float(v.get("avg", 0)) * w for v, w in zip(values, weights, strict=True))
              / total if total else 0.0,
              "min": min(float(v.get("min", 0)) for v in values),
              "max": max(float(v.get("max", 0)) for v in values)}
    asked = [stat for stat in values[0] if stat in QUANTILE_STATS]
    from_histogram = quantiles(name) if quantiles is not None else None
    if from_histogram is not None and all(stat in from_histogram for stat in asked):
        # A bucket's estimate may pass the exact extremes, which are known: kept within them.
        merged.update({stat: min(max(from_histogram[stat], merged["min"]), merged["max"])
                       for stat in asked})
        return merged, FROM_PROMETHEUS
    merged.update({stat: max(float(v.get(stat, 0)) for v in values) for stat in asked})
    return merged, UPPER_BOUND


def _samples(summary: Mapping[str, Any], name: str) -> float:
    """How many samples a trend of one instance holds, to weigh its average: a request
    trend's are its requests (of the same sub-metric where k6 kept one), an iteration's its
    iterations; any other trend counts as many as the instance's requests."""
    metrics = summary.get("metrics", {})
    tags = name[name.index("{"):] if "{" in name else ""
    if name.startswith("iteration_duration"):
        return float(metrics.get("iterations", {}).get("values", {}).get("count", 0))
    if "expected_response:true" in tags:  # the requests k6 did not count as failed
        rate = metrics.get("http_req_failed", {}).get("values", {})
        return float(rate.get("fails", 0))
    failed = metrics.get(f"http_req_failed{tags}", {}).get("values")
    if failed:
        return float(failed.get("passes", 0)) + float(failed.get("fails", 0))
    own = {"refusal_duration": "refusals"}.get(name)  # overload.js: one per refusal
    if own is not None:
        return float(metrics.get(own, {}).get("values", {}).get("count", 0))
    return float(metrics.get("http_reqs", {}).get("values", {}).get("count", 0))


def judge_thresholds(metrics: dict[str, Any]) -> bool:
    """Every threshold's verdict on the merged values, set in place; True when all hold. An
    expression on a statistic the summary lacks fails (it cannot be shown to hold)."""
    ok = True
    for metric in metrics.values():
        for expression, verdict in (metric.get("thresholds") or {}).items():
            verdict["ok"] = holds(expression, metric.get("values", {}))
            ok = ok and verdict["ok"]
    return ok


def holds(expression: str, values: Mapping[str, float]) -> bool:
    """Whether a k6 threshold expression such as `p(95)<500` or `rate<0.01` holds."""
    match = _EXPRESSION.fullmatch(expression)
    if match is None or match.group(1) not in values:
        return False
    stat, operator, bound = match.group(1), match.group(2), float(match.group(3))
    value = float(values[stat])
    return {"<": value < bound, "<=": value <= bound, ">": value > bound, ">=": value >= bound,
            "==": value == bound, "===": value == bound, "!=": value != bound}[operator]


def _group(groups: list[Mapping[str, Any]]) -> dict[str, Any]:
    """k6's group tree with every check's passes and fails summed across the instances."""
    first = groups[0] if groups else {}
    checks: dict[str, dict[str, Any]] = {}
    for group in groups:
        for check in group.get("checks") or []:
            merged = checks.setdefault(check["name"], {**check, "passes": 0, "fails": 0})
            merged["passes"] += int(check.get("passes", 0))
            merged["fails"] += int(check.get("fails", 0))
    names = [g["name"] for g in first.get("groups") or []]
    subgroups = [_group([sub for group in groups for sub in group.get("groups") or []
                         if sub.get("name") == name]) for name in names]
    return {**{key: first[key] for key in ("name", "path", "id") if key in first},
            "groups": subgroups, "checks": list(checks.values())}


def scenario_metric(metric: str, summaries: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The name of `metric`'s scenario sub-metric in these summaries, if they kept one."""
    names = {name for s in summaries.values() for name in s.get("metrics", {})
             if name.startswith(metric + SCENARIO_TAG)}
    return names.pop() if len(names) == 1 else None
