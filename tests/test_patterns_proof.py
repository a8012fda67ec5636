"""`alumnos patterns` on a real local stack: HAProxy, Granian replicas, k6, fault injection.

Shortened loads (bounded, loopback only); the verdicts are the command's own.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alumnos_cli.files import read_json
from alumnos_cli.main import app
from alumnos_cli.proof.balancing import judge_balance
from alumnos_cli.proof.options import PASS, SKIPPED, ProofOptions
from alumnos_cli.proof.run import prove
from alumnos_cli.runfolder import proof_files
from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_cli.stack import local
from alumnos_cli.stack.options import LOCAL_PATTERNS, ServiceOptions
from alumnos_cli.stack.ports import free_block

pytestmark = pytest.mark.slow

SHORT = ProofOptions(vus=60, retry_seconds=6, balancing_requests=300, cache_requests=100,
                     rate_seconds=2.0, breaker_vus=20, breaker_phase_seconds=3)


@pytest.fixture
def full_stack(settings: Settings) -> Iterator[local.UpResult]:
    seed_alumnos(settings, count=5000, seed=3)
    spec = replace(LOCAL_PATTERNS, rate_limit=True, rate_limit_average=50,
                   rate_limit_burst=50, circuit_breaker_fallback_s=8,
                   circuit_breaker_recovery_s=2)
    options = ServiceOptions(port=free_block(18300, 4), replicas=3, workers=1,
                             blocking_threads=4, fault_injection=True, patterns=spec)
    result = local.up(settings, options)
    yield result
    local.down(settings)


def test_every_pattern_is_proven_on_the_running_stack(full_stack: local.UpResult,
                                                      settings: Settings) -> None:
    report = prove(settings, SHORT)
    verdicts = {r.pattern: r for r in report.results}
    assert {name: r.verdict for name, r in verdicts.items()} == {
        "balancing": PASS, "retry": PASS, "rate-limit": PASS, "circuit-breaker": PASS,
        "cache": PASS, "overload": SKIPPED}, [r.observed for r in report.results]
    assert "alumnos up --no-cache" in verdicts["overload"].evidence["hint"]
    retry = verdicts["retry"].evidence
    assert retry["failed"] == 0 and retry["requests"] > 0
    assert "back UP in HAProxy" in retry["events_s_after_kill"]
    rate = verdicts["rate-limit"].evidence
    assert rate["above_429"] > 0 and rate["below_429"] == 0 and rate["well_formed"]
    breaker = verdicts["circuit-breaker"].evidence
    assert breaker["ejected_after_s"] is not None and breaker["served_while_out"] == 0
    assert breaker["served_after_heal"] > 0
    assert verdicts["cache"].evidence["equal_to_database"]
    saved = json.loads(report.path.read_text())
    assert [r["verdict"] for r in saved["results"]] == [PASS] * 5 + [SKIPPED]
    assert proof_files(settings.results_dir) == [report.path]
    # Runs on this same stack are reported with this proof, and no others.
    assert saved["stack_id"] == full_stack.state.service.stack_id
    # The healed replica has no fault left behind.
    assert not any(Path(r.fault_file).exists() for r in full_stack.state.service.replicas)


@pytest.fixture
def uncached_stack(settings: Settings) -> Iterator[local.UpResult]:
    seed_alumnos(settings, count=5000, seed=3)
    options = ServiceOptions(port=free_block(18300, 4), replicas=3, workers=1,
                             blocking_threads=4, cache=False)
    result = local.up(settings, options)
    yield result
    local.down(settings)


def test_overload_is_refused_fast_or_served_and_no_replica_is_ejected(
        uncached_stack: local.UpResult, settings: Settings) -> None:
    # Short and light for CI: the behaviour the proof asserts, not the full load's goodput.
    [result] = prove(settings, replace(SHORT, only=("overload",), overload_vus=100,
                                       overload_seconds=6)).results
    on, off = result.evidence["breaker_on"], result.evidence["breaker_off"]
    assert on["requests"] > 0 and off["requests"] > 0
    assert on["failures"] == 0 and on["ejections"] == 0
    assert result.evidence["refused_share"] <= 0.01
    # The script's count of refusals and the balancer's own agree.
    assert sum(on["balancer_refused"].values()) == on["refusals"]
    assert result.evidence["goodput_ratio"] == pytest.approx(
        (on["requests"] - on["refusals"]) / on["seconds"]
        / ((off["requests"] - off["refusals"] - off["failures"]) / off["seconds"]))
    assert "breaker paused" in result.observed
    # The pause was lifted: the breaker judges again.
    assert not (Path(str(uncached_stack.state.service.breaker_state)).parent
                / "breaker-paused").exists()


@pytest.fixture
def plain_stack(settings: Settings) -> Iterator[local.UpResult]:
    seed_alumnos(settings, count=500, seed=3)
    options = ServiceOptions(port=free_block(18300, 3), replicas=2, workers=1)
    result = local.up(settings, options)
    yield result
    local.down(settings)


def test_patterns_switched_off_are_skipped_with_the_way_to_switch_them_on(
        plain_stack: local.UpResult, settings: Settings) -> None:
    result = CliRunner().invoke(app, ["patterns", "balancing", "rate-limit", "circuit-breaker",
                                      "--state-dir", str(settings.state_dir),
                                      "--results-dir", str(settings.results_dir)])
    assert result.exit_code == 0, result.output
    assert "rate-limit skipped: alumnos down; alumnos up --rate-limit 100/s" in result.output
    assert "circuit-breaker skipped: alumnos down; alumnos up --fault-injection" in result.output
    saved = read_json(proof_files(settings.results_dir)[-1])
    assert [(r["pattern"], r["verdict"]) for r in saved["results"]] == [
        ("balancing", PASS), ("rate-limit", SKIPPED), ("circuit-breaker", SKIPPED)]


@pytest.mark.parametrize(("counts", "ok"), [
    ({"replica-1": 100, "replica-2": 100, "replica-3": 100}, True),
    ({"replica-1": 109, "replica-2": 100, "replica-3": 91}, True),
    ({"replica-1": 120, "replica-2": 100, "replica-3": 80}, False),  # 20% off even
    ({"replica-1": 150, "replica-2": 150}, False),  # a healthy replica served nothing
    ({"replica-1": 100, "replica-2": 100, "replica-3": 100, "stranger": 3}, False),
    ({}, False),
])
def test_balance_verdicts(counts: dict[str, int], ok: bool) -> None:
    verdict, _deviation = judge_balance(["replica-1", "replica-2", "replica-3"], Counter(counts))
    assert verdict is ok


def test_unknown_patterns_and_no_stack_are_refused(tmp_path: Path, settings: Settings) -> None:
    runner = CliRunner()
    no_stack = runner.invoke(app, ["patterns", "--state-dir", str(tmp_path / "none")])
    assert no_stack.exit_code == 1
    assert "no running stack to prove" in no_stack.output
    with pytest.raises(Exception, match="unknown pattern"):
        prove(settings, replace(SHORT, only=("teleport",)))


@pytest.mark.parametrize(("args", "flag", "message"), [
    (["retry", "--overload-vus", "100"], "--overload-vus",
     "--overload-vus only changes the overload proof, which is not among those asked (retry)"),
    (["cache", "overload", "--victim", "replica-1"], "--victim",
     "only changes the retry and circuit-breaker proof"),
    (["balancing", "--breaker-vus", "5"], "--breaker-vus", "circuit-breaker proof"),
])
def test_a_tuning_flag_for_a_proof_not_asked_for_is_refused(
        tmp_path: Path, args: list[str], flag: str, message: str) -> None:
    # Before: accepted and ignored; now refused before any stack is looked for.
    result = CliRunner().invoke(app, ["patterns", *args, "--state-dir", str(tmp_path)],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{flag}'" in result.output
    assert message.removeprefix(f"{flag} ") in result.output


def test_tuning_flags_of_the_proofs_asked_for_are_taken(tmp_path: Path) -> None:
    # Every proof when none is named: any tuning flag applies, and the command goes on to
    # look for the stack.
    result = CliRunner().invoke(app, ["patterns", "--overload-vus", "100", "--victim",
                                      "replica-1", "--state-dir", str(tmp_path / "none")],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert "no running stack to prove" in result.output
