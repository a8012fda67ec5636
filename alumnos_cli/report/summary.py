"""The figures of a run, from k6's end-of-test summary (what `handleSummary` wrote)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alumnos_cli.errors import RunFolderError
from alumnos_cli.report.model import Check, Latency, RunFigures, Threshold


def summary_figures(summary: Mapping[str, Any], file: str) -> RunFigures:
    """Extract the figures from one k6 summary document; `file` names it in errors.

    Requests, rate, errors and latency are the scenario's own (its {scenario:...} sub-metrics,
    setup()'s requests left out) when k6 kept them; runs recorded before count setup's too.
    """
    metrics: Mapping[str, Any] = summary.get("metrics", {})
    failed = _values(summary, _own(metrics, "http_req_failed"), file)
    duration = _values(summary, _own(metrics, "http_req_duration"), file)
    seconds = float(summary.get("state", {}).get("testRunDurationMs", 0)) / 1000
    requests, per_second = _requests(summary, failed, seconds, file)
    try:
        latency = Latency(avg=duration["avg"], p50=duration["med"], p90=duration["p(90)"],
                          p95=duration["p(95)"], p99=duration["p(99)"], max=duration["max"],
                          p999=duration.get("p(99.9)"))
    except KeyError as exc:
        raise RunFolderError(f"{file} lacks the latency statistic {exc}",
                             "run with the bundled k6 scripts, which ask k6 for p(99)") from None
    # Runs count non-200 answers as failed (k6/lib/checks.js); older ones counted 200s apart.
    share = _stat(metrics, "http_200", "rate")
    if share is None:
        share = 1 - float(failed.get("rate", 0.0))
    checks = _stat(metrics, "checks", "rate")
    return RunFigures(
        requests=requests,
        requests_per_second=per_second,
        share_200=float(share),
        error_rate=float(failed.get("rate", 0.0)),
        latency=latency,
        duration_seconds=seconds,
        data_received_bytes=int(_stat(metrics, "data_received", "count") or 0),
        max_vus=int(_stat(metrics, "vus_max", "max") or 0),
        iterations=int(_stat(metrics, "iterations", "count") or 0),
        thresholds=_thresholds(metrics),
        iteration_avg_ms=float(_stat(metrics, "iteration_duration", "avg") or 0.0),
        dropped_iterations=int(_stat(metrics, "dropped_iterations", "count") or 0),
        checks_rate=None if checks is None else float(checks),
        checks=_checks(summary),
    )


SCENARIO_TAG = "{scenario:"


def _requests(summary: Mapping[str, Any], failed: Mapping[str, Any], seconds: float,
              file: str) -> tuple[int, float]:
    """The scenario's requests and their rate: every request is one sample of its
    http_req_failed (a rate's passes are its true samples, failed requests; its fails the
    others), which k6 keeps per scenario where http_reqs has no sub-metric."""
    if _own(summary.get("metrics", {}), "http_req_failed") != "http_req_failed":
        requests = int(failed.get("passes", 0)) + int(failed.get("fails", 0))
        return requests, requests / seconds if seconds else 0.0
    reqs = _values(summary, "http_reqs", file)
    return int(reqs.get("count", 0)), float(reqs.get("rate", 0.0))


def _own(metrics: Mapping[str, Any], metric: str) -> str:
    """The metric's sub-metric of the run's one scenario (k6/lib/config.js thresholds()), else
    the metric itself: a run recorded before, or a script without the targets."""
    own = [name for name in metrics if name.startswith(metric + SCENARIO_TAG)]
    return own[0] if len(own) == 1 else metric


def _values(summary: Mapping[str, Any], metric: str, file: str) -> dict[str, Any]:
    try:
        values = summary["metrics"][metric]["values"]
    except (KeyError, TypeError):
        raise RunFolderError(f"{file} has no '{metric}' metric",
                             "the run sent no requests, or the file is not a k6 summary") from None
    return dict(values)


def _stat(metrics: Mapping[str, Any], metric: str, statistic: str) -> Any:
    """One statistic of one metric, None when k6 did not report it."""
    return metrics.get(metric, {}).get("values", {}).get(statistic)


def _thresholds(metrics: Mapping[str, Any]) -> tuple[Threshold, ...]:
    return tuple(
        Threshold(metric=name, expression=expression, ok=bool(verdict.get("ok")))
        for name, metric in sorted(metrics.items())
        for expression, verdict in (metric.get("thresholds") or {}).items())


# The one check that stands for all of them when k6's summary names none.
ALL_CHECKS = "all checks"


def _checks(summary: Mapping[str, Any]) -> tuple[Check, ...]:
    """Each named check of the run's groups; k6 1.x leaves the groups' checks empty in
    handleSummary's data, so then the `checks` metric's total stands for them all."""
    named = tuple(_group_checks(summary.get("root_group") or {}))
    if named:
        return named
    total: Mapping[str, Any] = summary.get("metrics", {}).get("checks", {}).get("values", {})
    if "passes" not in total:
        return ()
    return (Check(ALL_CHECKS, int(total["passes"]), int(total.get("fails", 0))),)


def _group_checks(group: Mapping[str, Any]) -> list[Check]:
    """A group's checks and its subgroups', each named by its path below the root."""
    found = [Check(str(check.get("path") or check.get("name")).removeprefix("::"),
                   int(check.get("passes", 0)), int(check.get("fails", 0)))
             for check in group.get("checks") or ()]
    for subgroup in group.get("groups") or ():
        found += _group_checks(subgroup)
    return found
