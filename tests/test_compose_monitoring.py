"""The compose stack's Prometheus and exporters as written: docker-compose.yml and monitoring/
follow alumnos_cli/stack/compose_monitoring.py, and what we generate is checked by the real
tools (promtool, the process exporter on this machine's /proc). The stack itself runs in
test_compose_engine.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from alumnos_cli.stack import compose, compose_monitoring, images
from alumnos_cli.stack.patterns import PatternsSpec
from alumnos_cli.stack.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
BASE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SCHEMA = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
MONITORING = ROOT / "monitoring"


def service(name: str) -> dict[str, Any]:
    return dict(BASE["services"][name])


def test_the_monitoring_files_are_what_the_module_writes() -> None:
    assert (MONITORING / "prometheus.yml").read_text() == compose_monitoring.prometheus_config()
    assert (MONITORING / "process-exporter.yml").read_text() == \
        compose_monitoring.process_exporter_config()


def test_every_monitoring_service_runs_the_modules_image_and_command() -> None:
    commands = {compose_monitoring.PROMETHEUS_SERVICE: compose_monitoring.prometheus_command(),
                **compose_monitoring.exporter_commands()}
    for name, part in compose_monitoring.SERVICES.items():
        assert service(name)["image"] == part.image
        assert service(name).get("command", []) == commands[name], name


def test_prometheus_is_the_only_monitoring_part_published_and_only_on_loopback() -> None:
    published = {name: service(name).get("ports", []) for name in compose_monitoring.SERVICES}
    assert published.pop(compose_monitoring.PROMETHEUS_SERVICE) == [
        "127.0.0.1:${ALUMNOS_COMPOSE_PROMETHEUS_PORT:-19090}:9090"]
    assert all(ports == [] for ports in published.values())
    # The host's /proc and /sys are read, never written.
    for name in ("node-exporter", "process-exporter"):
        mounts = [m for m in service(name)["volumes"] if m.startswith(("/proc", "/sys"))]
        assert mounts and all(m.endswith(":ro") for m in mounts), mounts


def test_prometheus_scrapes_every_target_it_is_said_to_by_service_name() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    targets = [t for job in config["scrape_configs"] for s in job.get("static_configs", [])
               for t in s["targets"]]
    for target in targets:
        host = target.rsplit(":", 1)[0]
        assert host == "localhost" or host in BASE["services"], target
    record = compose_monitoring.monitoring_record("http://127.0.0.1:19090", replicas=3)
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == set(record.targets)
    [replicas] = [job for job in config["scrape_configs"] if job["job_name"] == "alumnos"]
    assert replicas["dns_sd_configs"][0]["names"] == ["alumnos"]
    assert sum(len(t) for t in record.targets.values()) == 3 + 6


def test_promtool_accepts_the_prometheus_configuration() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (bash scripts/system-packages: prometheus)")
    result = subprocess.run([promtool, "check", "config", str(MONITORING / "prometheus.yml")],
                            capture_output=True, text=True, check=False, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_process_exporter_groups_processes_by_their_cgroups(tmp_path: Path) -> None:
    binary = shutil.which("prometheus-process-exporter") or "/usr/bin/prometheus-process-exporter"
    port = free_port(19356)
    process = subprocess.Popen([binary, f"-config.path={MONITORING / 'process-exporter.yml'}",
                                f"-web.listen-address=127.0.0.1:{port}", "-threads=false"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        metrics = _metrics(f"http://127.0.0.1:{port}/metrics")
    finally:
        process.terminate()
        process.wait(timeout=10)
    groups = {line.split('groupname="', 1)[1].split('"', 1)[0] for line in metrics.splitlines()
              if line.startswith("namedprocess_namegroup_cpu_seconds_total{")}
    # One group per set of cgroups, each named by them: this test's own process among them.
    assert groups and all(g.startswith("[") and g.endswith("]") for g in groups)
    own = Path("/proc/self/cgroup").read_text().split("\n")[0].split(":", 2)[2]
    assert any(own in group for group in groups), (own, groups)


def _metrics(url: str) -> str:
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return bytes(answer.read()).decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_offline_every_monitoring_service_runs_its_debian_binary_from_one_image() -> None:
    override = compose.compose_override(PatternsSpec(), 3, cache=True, offline=True)
    for name, part in compose_monitoring.SERVICES.items():
        assert override["services"][name] == {"image": images.MONITORING_IMAGE,
                                              "entrypoint": [part.debian_binary]}
        # The binary is Debian's, as local mode runs it: the package exists on this machine.
        assert shutil.which(part.debian_binary) or Path(f"/usr/bin/{part.debian_binary}").exists()
    dockerfile = (ROOT / "container-images" / "prometheus" / "Dockerfile").read_text()
    for part in compose_monitoring.SERVICES.values():
        assert part.debian_binary in dockerfile
    online = compose.compose_override(PatternsSpec(), 3, cache=True, offline=False)
    assert set(online["services"]) == {"alumnos"}
    merged = {**BASE, "services": {**BASE["services"], **{
        name: {**BASE["services"].get(name, {}), **changes}
        for name, changes in override["services"].items()}}}
    jsonschema.Draft7Validator(SCHEMA).validate(merged)


def test_no_prometheus_scales_every_monitoring_service_to_zero() -> None:
    arguments = compose_monitoring.scale_to_zero()
    assert arguments[::2] == ["--scale"] * len(compose_monitoring.SERVICES)
    assert arguments[1::2] == [f"{name}=0" for name in compose_monitoring.SERVICES]


def test_an_older_record_without_prometheus_reads_as_none() -> None:
    record = compose.ComposeRecord(project="alumnos", cli=[], files=[], url="http://x:1",
                                   api_url="http://127.0.0.1:1", replicas=2, cache=True,
                                   patterns=PatternsSpec())
    assert record.monitoring is None
    started = compose.ComposeRecord(**{**record.__dict__,
                                       "prometheus_url": "http://127.0.0.1:19090"})
    assert started.monitoring is not None and started.monitoring.port == 19090
    assert len(started.monitoring.targets["alumnos"]) == 2
