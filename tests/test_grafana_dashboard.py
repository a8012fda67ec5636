"""The Grafana dashboard in grafana/: its JSON's shape, its provisioning files, and every panel's
query answered by a real stack's Prometheus after a short bench run.

Grafana itself is not installed here, so the panels are checked as Grafana would send them:
the template variables replaced, each query asked of the stack's Prometheus (tests/
test_monitoring.py's fixtures) for the run's window.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from alumnos_cli.runfolder import PROMETHEUS_FILE
from alumnos_cli.settings import Settings
from alumnos_cli.stack import haproxy, local, monitoring
from tests import test_monitoring

GRAFANA = Path(__file__).resolve().parents[1] / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "alumnos.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "alumnos.yml"
# Where a Grafana container finds what compose mounts (Grafana's documented defaults).
CONTAINER_DASHBOARDS = "/var/lib/grafana/dashboards"
PROMETHEUS_IN_COMPOSE = "http://prometheus:9090"
ROWS = ["k6", "Service", "HAProxy", "Traefik", "Breaker", "PostgreSQL", "Redis", "Processes",
        "Host"]
# The balancer's rows: each stack has one balancer, so the other's row draws nothing there.
LOCAL_ONLY = {"HAProxy", "Breaker"}
COMPOSE_ONLY = {"Traefik"}
# Variables Grafana defines itself; the dashboard defines the rest.
BUILT_IN = {"__rate_interval", "__interval", "__range"}
VARIABLE = re.compile(r"\$\{?(\w+)\}?")
GRID_COLUMNS = 24

# The stack's fixtures, shared with the monitoring tests.
options = test_monitoring.options


def _dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel but the rows."""
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def _targets(dashboard: dict[str, Any], skip_rows: frozenset[str] = frozenset()
             ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Every panel's queries, but those of the rows named in skip_rows."""
    row = ""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
            continue
        if row in skip_rows:
            continue
        for target in panel["targets"]:
            yield panel, target


def _used_variables(dashboard: dict[str, Any]) -> set[str]:
    """The variables the panels and the variables' own queries refer to."""
    texts = [json.dumps(panel) for panel in _panels(dashboard)]
    texts += [json.dumps(v.get("query")) + json.dumps(v.get("datasource"))
              for v in dashboard["templating"]["list"]]
    return {name for text in texts for name in VARIABLE.findall(text)}


def test_the_dashboard_is_grafana_json_with_a_row_per_component() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "alumnos" and dashboard["schemaVersion"] >= 36
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ROWS
    kinds = [p["type"] for p in dashboard["panels"]]
    # A row is followed by its panels: none empty, none at the end with nothing under it.
    assert all(kind != "row" for kind, following in itertools.pairwise(kinds)
               if following == "row")
    assert kinds[-1] != "row"


def test_panels_have_unique_ids_and_fit_the_grid_without_overlapping() -> None:
    panels = _dashboard()["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], int] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["h"] > 0, panel["title"]
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps panel {cells[(x, y)]}"
                cells[(x, y)] = panel["id"]


def test_every_panel_queries_prometheus_through_the_datasource_variable() -> None:
    for panel in _panels(_dashboard()):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (
            panel["title"])
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target.get("datasource", panel["datasource"]) == panel["datasource"]


def test_template_variables_are_defined_and_used() -> None:
    dashboard = _dashboard()
    defined = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert defined["datasource"]["type"] == "datasource"
    assert defined["datasource"]["query"] == "prometheus"
    assert defined["run_id"]["query"]["query"] == "label_values(k6_http_reqs_total, run_id)"
    used = _used_variables(dashboard)
    assert used - BUILT_IN <= set(defined), used - BUILT_IN - set(defined)
    assert set(defined) <= used, f"defined but unused: {set(defined) - used}"
    # Every k6 panel selects the chosen runs; nothing else knows of run_id.
    for panel, target in _targets(dashboard):
        if "k6_" in target["expr"]:
            assert 'run_id=~"$run_id"' in target["expr"], panel["title"]


def test_the_haproxy_panels_name_the_balancers_proxies() -> None:
    proxies = {name for _, target in _targets(_dashboard())
               for name in re.findall(r'proxy="([^"]+)"', target["expr"])}
    assert proxies == {haproxy.BACKEND, haproxy.FRONTEND}


def test_the_provisioning_files_load_the_dashboard_from_the_compose_mounts() -> None:
    datasources = yaml.safe_load(DATASOURCES.read_text())
    assert datasources["apiVersion"] == 1
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == PROMETHEUS_IN_COMPOSE
    assert source["access"] == "proxy" and source["isDefault"] is True
    # $__rate_interval is four scrapes of this: the stack's interval, or rates go empty.
    assert source["jsonData"]["timeInterval"] == monitoring.SCRAPE_INTERVAL
    default = next(v for v in _dashboard()["templating"]["list"] if v["name"] == "datasource")
    assert default["current"]["value"] == source["uid"]
    providers = yaml.safe_load(PROVIDERS.read_text())
    assert providers["apiVersion"] == 1
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == CONTAINER_DASHBOARDS
    # The folder mounted there is the repository's grafana/dashboards.
    assert DASHBOARD.parent.name == Path(CONTAINER_DASHBOARDS).name


def _api(prometheus: str, endpoint: str, params: dict[str, str]) -> list[Any]:
    url = f"{prometheus}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        document = json.load(answer)
    assert document["status"] == "success", document
    return list(document["data"]["result"])


def _substitute(expr: str, values: dict[str, str]) -> str:
    """The query as Grafana sends it: each $variable (or ${variable}) replaced."""
    return VARIABLE.sub(lambda found: values[found.group(1)], expr)


def empty_panels(prometheus: str, run_dir: Path, database: str,
                 skip_rows: frozenset[str]) -> list[str]:
    """The panels (but those of skip_rows) that draw nothing for a run's window, as
    Grafana would ask Prometheus for them: empty when the dashboard works on that stack."""
    # The load's window as bench read it: from the load's start to the first scrape after it.
    window = json.loads((run_dir / PROMETHEUS_FILE).read_text())["window"]
    start, end = float(window["start"]), float(window["end"])
    values = {"run_id": run_dir.name, "database": database,
              "__rate_interval": "15s", "__interval": "1s",
              "__range": f"{math.ceil(end - start)}s"}
    empty = []
    for panel, target in _targets(_dashboard(), skip_rows):
        promql = _substitute(target["expr"], values)
        instant = _api(prometheus, "query", {"query": promql, "time": f"{end:.3f}"})
        over_window = _api(prometheus, "query_range", {"query": promql, "start": f"{start:.3f}",
                                                       "end": f"{end:.3f}", "step": "1"})
        # A number somewhere in the window (a quantile of nothing is NaN: no data drawn).
        drawn = any(math.isfinite(float(value)) for series in over_window
                    for _, value in series["values"])
        if not instant or not drawn:
            empty.append(f"{panel['title']} [{target['refId']}] "
                         f"(instant {len(instant)}, range {len(over_window)}): {promql}")
    return empty


@pytest.mark.slow
def test_every_panel_answers_from_the_stacks_prometheus_after_a_short_run(
        stack: local.UpResult, settings: Settings) -> None:
    from alumnos_cli.bench.request import BenchRequest
    from alumnos_cli.bench.run import run_bench

    record = stack.state.service.monitoring
    assert record is not None
    run = run_bench(settings, BenchRequest(scenario="spike", vus=3, duration_seconds=4))
    database = urllib.parse.urlsplit(settings.database_url).path.lstrip("/")
    # Every row but Traefik's, which test_compose_engine.py runs against a compose stack.
    assert empty_panels(record.url, run.run_dir, database, frozenset(COMPOSE_ONLY)) == []
