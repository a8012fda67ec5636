"""A run as JUnit XML, for CI systems: one test case per k6 threshold and per check.

CI systems (Jenkins, GitLab, GitHub's test reporters) read the Ant/Surefire layout: a
<testsuites> root, one <testsuite> with its counts, <testcase> elements with a <failure> when
they failed. tests/data/junit.xsd is that layout as a schema; the tests validate against it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from alumnos_cli.report.model import Check, RunReport, Threshold
from alumnos_cli.report.render.text import describe_load


def run_junit(report: RunReport) -> str:
    """The run's thresholds and checks as one test suite."""
    figures = report.figures
    cases = ([_threshold_case(t) for t in figures.thresholds]
             + [_check_case(c) for c in figures.checks])
    failures = sum(1 for case in cases if case.find("failure") is not None)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0",
              "time": f"{figures.duration_seconds:.3f}"}
    root = ET.Element("testsuites", {"name": "alumnos", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": f"alumnos run {report.name}", **counts,
                                              "skipped": "0",
                                              "timestamp": report.meta.started_at})
    properties = ET.SubElement(suite, "properties")
    for name, value in (("scenario", report.meta.scenario), ("load", describe_load(report.meta)),
                        ("url", report.meta.url), ("requests", str(figures.requests)),
                        ("requests_per_second", f"{figures.requests_per_second:.1f}"),
                        ("error_rate", f"{figures.error_rate:.4f}"),
                        ("p95_ms", f"{figures.latency.p95:.1f}")):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    suite.extend(cases)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _threshold_case(threshold: Threshold) -> ET.Element:
    case = ET.Element("testcase", {"classname": "k6.thresholds",
                                   "name": f"{threshold.metric} {threshold.expression}"})
    if not threshold.ok:
        ET.SubElement(case, "failure", {
            "type": "threshold", "message": f"k6 threshold {threshold.metric} "
            f"{threshold.expression} was crossed"})
    return case


def _check_case(check: Check) -> ET.Element:
    case = ET.Element("testcase", {"classname": "k6.checks", "name": check.name})
    if not check.ok:
        total = check.passes + check.fails
        ET.SubElement(case, "failure", {
            "type": "check", "message": f"k6 check {check.name!r} failed {check.fails:,} "
            f"times in {total:,} ({check.fails / total:.2%})"})
    return case
