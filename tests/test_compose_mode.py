"""Compose mode without a Docker engine: the docker SDK and the compose CLI faked at the boundary.

What we generate (the override, the merged labels, the compose command) is checked strictly:
against the Compose Specification's schema, the label checker, and the patterns spec that
HAProxy's configuration is made from.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from docker.errors import DockerException
from typer.testing import CliRunner

from alumnos_cli.main import app
from alumnos_cli.stack import compose
from alumnos_cli.stack.haproxy import BalancerPaths, Replica, haproxy_config
from alumnos_cli.stack.patterns import PatternsSpec
from alumnos_cli.stack.traefik import (
    label_problems,
    labels_as_dict,
    router_chains,
    spec_from_labels,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())


class FakeContainer:
    def __init__(self, name: str, service: str, status: str, health: str | None) -> None:
        self.name, self.status = name, status
        self.labels = {"com.docker.compose.project": "alumnos",
                       "com.docker.compose.service": service}
        self.attrs: dict[str, Any] = {"State": {"Health": {"Status": health}} if health else {}}


class FakeContainers:
    def __init__(self, items: list[FakeContainer]) -> None:
        self.items = items
        self.filters: list[dict[str, str]] = []

    def list(self, *, all: bool, filters: dict[str, str]) -> list[FakeContainer]:
        assert all
        self.filters.append(filters)
        return self.items


class FakeEngine:
    def __init__(self, containers: list[FakeContainer] | None = None) -> None:
        self.containers = FakeContainers(containers or [])
        self.closed = False

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


def no_engine() -> FakeEngine:
    raise DockerException("Error while fetching server API version: connection refused")


class FakeCompose:
    """Records the docker compose command lines; answers with a chosen exit code."""

    def __init__(self, returncode: int = 0, stderr: str = "") -> None:
        self.calls: list[list[str]] = []
        self.returncode, self.stderr = returncode, stderr

    def __call__(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        return subprocess.CompletedProcess(argv, self.returncode, "", self.stderr)


def merge(base: Any, override: Any) -> Any:
    """Compose's merge for what we override: mappings merge by key, the rest is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {key: merge(base.get(key), override.get(key)) if key in base and key in override
                else override.get(key, base.get(key)) for key in {**base, **override}}
    return override


def merged_project(spec: PatternsSpec, replicas: int = 3, cache: bool = True) -> dict[str, Any]:
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    base["services"]["alumnos"]["labels"] = labels_as_dict(base["services"]["alumnos"]["labels"])
    return merge(base, compose.compose_override(spec, replicas, cache=cache))


def test_auto_mode_picks_compose_only_when_an_engine_answers() -> None:
    engines: list[FakeEngine] = []

    def factory() -> FakeEngine:
        engines.append(FakeEngine())
        return engines[-1]

    assert compose.choose_mode("auto", factory) == "compose"
    assert [engine.closed for engine in engines] == [True]  # asked, then let go
    assert compose.choose_mode("auto", no_engine) == "local"
    assert compose.choose_mode("local", FakeEngine) == "local"
    assert compose.choose_mode("compose", FakeEngine) == "compose"


def test_compose_mode_without_an_engine_is_refused_with_the_way_out() -> None:
    with pytest.raises(Exception, match="no Docker engine answers") as info:
        compose.choose_mode("compose", no_engine)
    assert "--mode local" in info.value.hint  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="--mode must be one of auto, local, compose"):
        compose.choose_mode("swarm", FakeEngine)


def test_the_cli_refuses_compose_mode_here(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["up", "--mode", "compose", "--state-dir", str(tmp_path)],
                                env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.exit_code == 1
    assert "no Docker engine answers" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("spec", "replicas", "cache"), [
    (PatternsSpec(), 3, True),
    (PatternsSpec(rate_limit=False), 5, False),
    (PatternsSpec(retry=False, circuit_breaker=False, rate_limit=False), 1, True),
    (replace(PatternsSpec(), rate_limit_average=7, rate_limit_burst=7,
             circuit_breaker_latency_ms=250, retry_attempts=2), 2, True),
])
def test_the_override_keeps_the_project_valid_and_follows_the_flags(
        spec: PatternsSpec, replicas: int, cache: bool) -> None:
    project = merged_project(spec, replicas, cache)
    jsonschema.Draft7Validator(SCHEMA).validate(project)
    service = project["services"]["alumnos"]
    assert service["deploy"]["replicas"] == replicas
    assert service["environment"]["ALUMNOS_CACHE"] == ("on" if cache else "off")
    labels = service["labels"]
    switched_off = frozenset(name for name, on in (
        (spec.rate_limit_middleware, spec.rate_limit),
        (spec.retry_middleware, spec.retry)) if not on)
    assert label_problems(labels, switched_off) == []
    assert router_chains(labels)["alumnos"] == list(spec.middleware_chain)
    # Read back from the merged labels, the patterns are the spec HAProxy is configured from.
    read_back = spec_from_labels(labels)
    for field in ("rate_limit", "retry", "circuit_breaker"):
        assert getattr(read_back, field) == getattr(spec, field)
    if spec.rate_limit:
        assert (read_back.rate_limit_average, read_back.rate_limit_burst) == (
            spec.rate_limit_average, spec.rate_limit_burst)
    if spec.circuit_breaker:
        assert read_back.dead_after_failures == spec.dead_after_failures
        assert read_back.circuit_breaker_fallback_s == spec.circuit_breaker_fallback_s
    if spec.retry:
        assert read_back.retry_attempts == spec.retry_attempts


def test_traefik_labels_and_haproxy_config_carry_the_same_numbers() -> None:
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    spec = spec_from_labels(labels_as_dict(base["services"]["alumnos"]["labels"]))
    assert spec == PatternsSpec()
    config = haproxy_config(spec, [Replica("replica-1", "127.0.0.1", 5001)], "127.0.0.1",
                            5000, BalancerPaths(Path("/tmp/x.sock"), log_ring=True), slots=16)
    assert f"retries {spec.retry_attempts - 1}" in config
    assert f"sc_gpc0_rate(0) ge {spec.rate_limit_average}" in config
    assert f"gpc0_rate({spec.rate_limit_period_s}s)" in config
    assert f"option httpchk GET {spec.health_path}" in config
    assert re.search(rf"check inter {spec.health_interval_ms}ms", config)
    assert f"error-limit {spec.dead_after_failures} on-error mark-down" in config
    assert f"maxconn {16 * spec.admitted_per_slot} " in config


def test_up_writes_the_override_and_runs_compose(tmp_path: Path) -> None:
    runner = FakeCompose()
    spec = PatternsSpec(rate_limit=False)
    record = compose.up(tmp_path, spec, 4, cache=True, runner=runner)
    override = tmp_path / compose.OVERRIDE_FILE
    assert runner.calls == [["docker", "compose", "--project-name", "alumnos",
                             "--file", str(compose.COMPOSE_FILE), "--file", str(override),
                             "up", "--detach", "--build", "--wait"]]
    assert yaml.safe_load(override.read_text()) == compose.compose_override(spec, 4, cache=True)
    assert record.url == "http://alumnos.universidad.localhost"
    assert compose.load(tmp_path) == record
    assert compose.down(tmp_path, runner=runner) == [
        "compose project alumnos (4 replicas, Traefik, PostgreSQL, Redis)"]
    assert runner.calls[-1][-2:] == ["down", "--remove-orphans"]
    assert compose.load(tmp_path) is None
    assert compose.down(tmp_path, runner=runner) == []


def test_a_failing_compose_up_says_why_and_records_nothing(tmp_path: Path) -> None:
    runner = FakeCompose(1, "Error response from daemon: port is already allocated\n")
    with pytest.raises(Exception, match="docker compose up failed: Error response from daemon"):
        compose.up(tmp_path, PatternsSpec(), 3, cache=True, runner=runner)
    assert compose.load(tmp_path) is None


def test_status_lists_the_project_containers_with_health() -> None:
    engine = FakeEngine([
        FakeContainer("alumnos-traefik-1", "traefik", "running", "healthy"),
        FakeContainer("alumnos-alumnos-2", "alumnos", "running", "unhealthy"),
        FakeContainer("alumnos-alumnos-1", "alumnos", "running", "healthy"),
        FakeContainer("alumnos-redis-1", "redis", "exited", None),
    ])
    rows = compose.containers(engine)
    assert [(r.service, r.name, r.state, r.health) for r in rows] == [
        ("alumnos", "alumnos-alumnos-1", "running", "healthy"),
        ("alumnos", "alumnos-alumnos-2", "running", "unhealthy"),
        ("redis", "alumnos-redis-1", "exited", "-"),
        ("traefik", "alumnos-traefik-1", "running", "healthy"),
    ]
    assert engine.containers.filters == [{"label": "com.docker.compose.project=alumnos"}]


def test_a_corrupt_compose_record_names_the_file(tmp_path: Path) -> None:
    (tmp_path / compose.STATE_FILE).write_text("{not json")
    with pytest.raises(Exception, match=r"compose\.json is corrupt"):
        compose.load(tmp_path)
