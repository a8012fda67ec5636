"""The local circuit breaker's state machine, fed synthetic HAProxy log samples."""

from __future__ import annotations

import math

from alumnos_cli.stack.breaker import (
    CLOSED,
    OPEN,
    RECOVERING,
    Action,
    Breaker,
    BreakerConfig,
    parse_log_line,
    reconcile,
)
from alumnos_cli.stack.haproxy import ServerStat


def _breaker(**change: object) -> Breaker:
    values: dict[str, object] = dict(
        replicas=["replica-1", "replica-2"], latency_ms=100.0, quantile=50.0, window_s=2.0,
        min_samples=5, check_period_ms=100, fallback_s=10.0, recovery_s=10.0, log_port=0,
        runtime_socket="/nonexistent", state_file="/nonexistent")
    values.update(change)
    return Breaker(BreakerConfig(**values), now=0.0)  # type: ignore[arg-type]


def _feed(breaker: Breaker, replica: str, ms: float, count: int, at: float) -> None:
    for _ in range(count):
        breaker.observe(replica, ms, at)


def test_a_slow_median_opens_only_that_replica() -> None:
    breaker = _breaker()
    _feed(breaker, "replica-1", 5, 50, at=1.0)
    _feed(breaker, "replica-2", 300, 6, at=1.0)
    _feed(breaker, "replica-2", 5, 4, at=1.0)  # a fast minority does not save it
    assert breaker.tick(1.1) == [Action("replica-2", state="maint")]
    assert breaker.replicas["replica-2"].state == OPEN
    assert breaker.replicas["replica-1"].state == CLOSED
    assert breaker.transitions == ["replica-2 open: p50 300 ms over 10 responses > 100 ms"]


def test_a_slow_tail_does_not_open_it() -> None:
    breaker = _breaker()
    _feed(breaker, "replica-1", 5, 9, at=1.0)
    _feed(breaker, "replica-1", 2000, 8, at=1.0)
    assert breaker.tick(1.1) == []


def test_too_few_samples_give_no_verdict() -> None:
    breaker = _breaker()
    _feed(breaker, "replica-1", 900, 4, at=1.0)
    assert breaker.tick(1.1) == []
    assert breaker.replicas["replica-1"].quantile_ms is None


def test_old_samples_leave_the_window() -> None:
    breaker = _breaker()
    _feed(breaker, "replica-1", 5, 100, at=0.5)
    _feed(breaker, "replica-1", 300, 10, at=2.0)
    assert breaker.tick(2.1) == []  # the fast ones still dominate
    assert breaker.tick(2.6) == [Action("replica-1", state="maint")]  # now they are gone


def test_no_response_at_all_counts_as_slow() -> None:
    breaker = _breaker()
    _feed(breaker, "replica-1", math.inf, 5, at=1.0)
    assert breaker.tick(1.1) == [Action("replica-1", state="maint")]


def test_open_then_recovering_with_a_growing_weight_then_closed() -> None:
    breaker = _breaker(fallback_s=10.0, recovery_s=10.0)
    _feed(breaker, "replica-1", 300, 5, at=1.0)
    breaker.tick(1.0)
    assert breaker.tick(10.9) == []  # still within the fallback duration
    assert breaker.tick(11.0) == [Action("replica-1", weight=10), Action("replica-1",
                                                                          state="ready")]
    assert breaker.replicas["replica-1"].state == RECOVERING
    weights = [a.weight for t in (13.0, 16.0, 19.0) for a in breaker.tick(t)]
    assert weights == [28, 55, 82]
    assert breaker.tick(21.0) == [Action("replica-1", weight=100)]
    assert breaker.replicas["replica-1"].state == CLOSED
    assert breaker.replicas["replica-1"].trips == 1


def test_slow_again_while_recovering_opens_it_again() -> None:
    breaker = _breaker(fallback_s=1.0)
    _feed(breaker, "replica-1", 300, 5, at=0.5)
    breaker.tick(0.5)
    breaker.tick(1.6)
    assert breaker.replicas["replica-1"].state == RECOVERING
    _feed(breaker, "replica-1", 250, 5, at=2.0)
    assert breaker.tick(2.1) == [Action("replica-1", state="maint")]
    assert breaker.replicas["replica-1"].trips == 2


def test_samples_from_before_a_transition_do_not_judge_the_new_state() -> None:
    breaker = _breaker(fallback_s=1.0)
    _feed(breaker, "replica-1", 300, 20, at=0.9)
    breaker.tick(1.0)
    assert breaker.tick(2.0)[-1] == Action("replica-1", state="ready")
    assert breaker.tick(2.1) == []  # the slow samples were cleared on the way


def test_unknown_replicas_are_ignored() -> None:
    breaker = _breaker()
    _feed(breaker, "replica-9", 900, 50, at=1.0)
    assert breaker.tick(1.1) == []


def test_percentiles_other_than_the_median() -> None:
    breaker = _breaker(quantile=90.0)
    _feed(breaker, "replica-1", 5, 85, at=1.0)
    _feed(breaker, "replica-1", 500, 15, at=1.0)
    assert breaker.tick(1.1) == [Action("replica-1", state="maint")]


def _stat(name: str, status: str, weight: int = 100) -> ServerStat:
    return ServerStat(name=name, status=status, check_status="L7OK", weight=weight, requests=0,
                      errors_5xx=0, retries=0, redispatches=0, response_ms=0,
                      current_sessions=0)


def test_reconcile_puts_haproxy_back_in_line_with_the_breakers() -> None:
    breaker = _breaker()
    _feed(breaker, "replica-1", 300, 5, at=1.0)
    breaker.tick(1.0)  # replica-1 open
    # HAProxy restarted and forgot: replica-1 is UP again; replica-2 was left in MAINT by a
    # previous watcher.
    actions = reconcile(breaker, [_stat("replica-1", "UP"), _stat("replica-2", "MAINT"),
                                  _stat("replica-9", "MAINT")])
    assert actions == [Action("replica-1", state="maint"), Action("replica-2", state="ready")]
    assert reconcile(breaker, [_stat("replica-1", "MAINT"), _stat("replica-2", "UP")]) == []


def test_reconcile_restores_a_lost_recovery_weight() -> None:
    breaker = _breaker(fallback_s=1.0)
    _feed(breaker, "replica-1", 300, 5, at=0.5)
    breaker.tick(0.5)
    breaker.tick(1.6)  # recovering at 10%
    assert reconcile(breaker, [_stat("replica-1", "UP", weight=100)]) == [
        Action("replica-1", weight=10)]
    assert reconcile(breaker, [_stat("replica-1", "UP", weight=10)]) == []


def test_haproxy_log_lines() -> None:
    assert parse_log_line(b"replica-2 12 200\n") == ("replica-2", 12.0)
    assert parse_log_line(b"replica-1 -1 502") == ("replica-1", math.inf)
    assert parse_log_line(b"<NOSRV> -1 429") is None  # answered by HAProxy itself
    assert parse_log_line(b"garbage") is None
    assert parse_log_line(b"replica-1 abc 200") is None
