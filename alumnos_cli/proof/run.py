"""Running the asked proofs on the stack `up` started, and saving their results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from alumnos_cli.errors import AlumnosError, ServiceUnreachable
from alumnos_cli.files import write_json
from alumnos_cli.proof.balancing import prove_balancing
from alumnos_cli.proof.cache import prove_cache
from alumnos_cli.proof.circuit_breaker import prove_circuit_breaker
from alumnos_cli.proof.compose_proofs import prove_compose
from alumnos_cli.proof.options import (
    FAIL,
    PATTERNS,
    PatternResult,
    Progress,
    ProofOptions,
    validate,
)
from alumnos_cli.proof.overload import prove_overload
from alumnos_cli.proof.rate_limit import prove_rate_limit
from alumnos_cli.proof.retry import prove_retry
from alumnos_cli.runfolder import PROOF_FILE, PROOFS_DIR, new_run_dir
from alumnos_cli.settings import Settings
from alumnos_cli.stack import compose, engine
from alumnos_cli.stack.state import running_state


@dataclass(frozen=True)
class ProofReport:
    """Every proof's result, and where it was saved."""

    results: list[PatternResult]
    path: Path

    @property
    def ok(self) -> bool:
        """True when no proof failed (skipped ones do not count)."""
        return all(r.verdict != FAIL for r in self.results)


def prove(settings: Settings, options: ProofOptions,
          progress: Progress | None = None) -> ProofReport:
    """Run the asked proofs against the stack `up` started; save and return the results."""
    validate(options)
    state = running_state(settings.state_dir)
    if state is None:
        record = compose.load(settings.state_dir)
        if record is not None:
            return _prove_compose(settings, record, options, progress)
        raise ServiceUnreachable("no running stack to prove", "start one with alumnos up")
    if not state.service.balancer:
        raise AlumnosError("the stack runs without a balancer, so it has no patterns to prove",
                           "alumnos down, then alumnos up (HAProxy is on by default)")
    folder = new_run_dir(settings.results_dir / PROOFS_DIR)
    say = progress or (lambda _message: None)
    steps: dict[str, Callable[[], PatternResult]] = {
        "balancing": lambda: prove_balancing(state, options),
        "retry": lambda: prove_retry(state, options, folder / "retry", say),
        "rate-limit": lambda: prove_rate_limit(state, options),
        "circuit-breaker": lambda: prove_circuit_breaker(state, options, folder / "breaker", say),
        "cache": lambda: prove_cache(state, options),
        "overload": lambda: prove_overload(state, options, folder / "overload", say),
    }
    results = []
    for name in PATTERNS:
        if name in options.only:
            say(f"proving {name} ...")
            results.append(steps[name]())
    path = folder / PROOF_FILE
    write_json(path, {"started_at": folder.name, "url": state.service.url,
                      "stack_id": state.service.stack_id,
                      "replicas": [r.name for r in state.service.replicas],
                      "patterns": asdict(state.service.patterns),
                      "options": asdict(options),
                      "results": [asdict(r) for r in results]})
    return ProofReport(results, path)


def _prove_compose(settings: Settings, record: compose.ComposeRecord, options: ProofOptions,
                   progress: Progress | None) -> ProofReport:
    """The proofs on the compose stack (Traefik), saved like local mode's."""
    folder = new_run_dir(settings.results_dir / PROOFS_DIR)
    client = engine.connect(record.docker_host)
    try:
        results = prove_compose(record, client, options, folder,
                                progress or (lambda _message: None))
    finally:
        client.close()
    path = folder / PROOF_FILE
    write_json(path, {"started_at": folder.name, "url": record.url, "mode": "compose",
                      "replicas": record.replicas, "patterns": asdict(record.patterns),
                      "options": asdict(options), "results": [asdict(r) for r in results]})
    return ProofReport(results, path)
