"""The local circuit breaker's state machine (outlier ejection) and the watcher's reading of
HAProxy's log lines, fed synthetic samples."""

from __future__ import annotations

import math

import pytest

from alumnos_cli.stack.breaker import (
    CLOSED,
    OPEN,
    RECOVERING,
    Action,
    Breaker,
    BreakerConfig,
)
from alumnos_cli.stack.haproxy import ServerStat
from alumnos_cli.stack.watcher import Counts, LogLine, parse_log_line, reconcile

TWO = ["replica-1", "replica-2"]
THREE = ["replica-1", "replica-2", "replica-3"]


def _breaker(replicas: list[str] | None = None, **change: object) -> Breaker:
    values: dict[str, object] = dict(
        replicas=replicas or THREE, enabled=True, latency_ms=100.0, quantile=50.0,
        window_s=2.0, min_samples=5, check_period_ms=100, fallback_s=10.0, recovery_s=10.0,
        peer_factor=2.0, error_share=0.5, max_ejected_share=1 / 3,
        runtime_socket="/nonexistent", state_file="/nonexistent",
        pause_file="/nonexistent")
    values.update(change)
    return Breaker(BreakerConfig(**values), now=0.0)  # type: ignore[arg-type]


def _feed(breaker: Breaker, replica: str, ms: float, count: int, at: float, *,
          failed: bool = False) -> None:
    for _ in range(count):
        breaker.observe(replica, ms, failed=failed, now=at)


def _healthy(breaker: Breaker, *names: str, at: float = 1.0) -> None:
    for name in names:
        _feed(breaker, name, 20, 20, at=at)


def test_one_slow_replica_among_healthy_peers_is_ejected_alone() -> None:
    breaker = _breaker()
    _healthy(breaker, "replica-1", "replica-3")
    _feed(breaker, "replica-2", 300, 6, at=1.0)
    _feed(breaker, "replica-2", 5, 4, at=1.0)  # a fast minority does not save it
    assert breaker.tick(1.1) == [Action("replica-2", state="maint")]
    assert breaker.replicas["replica-2"].state == OPEN
    assert [b.state for b in breaker.replicas.values()] == [CLOSED, OPEN, CLOSED]
    [event] = breaker.events
    assert (event.replica, event.state) == ("replica-2", OPEN)
    assert "p50 300 ms" in event.why and "outlier" in event.why


def test_every_replica_slow_is_overload_and_ejects_none() -> None:
    breaker = _breaker()
    for name in THREE:
        _feed(breaker, name, 400 + 10 * THREE.index(name), 20, at=1.0)
    assert breaker.tick(1.1) == []  # all over 100 ms, none twice as slow as the others
    assert all(b.state == CLOSED for b in breaker.replicas.values())


def test_slow_but_not_twice_its_peers_stays() -> None:
    breaker = _breaker()
    _feed(breaker, "replica-1", 150, 20, at=1.0)
    _feed(breaker, "replica-2", 110, 20, at=1.0)
    _feed(breaker, "replica-3", 120, 20, at=1.0)
    assert breaker.tick(1.1) == []


def test_a_slow_tail_does_not_eject() -> None:
    breaker = _breaker()
    _healthy(breaker, "replica-2", "replica-3")
    _feed(breaker, "replica-1", 5, 9, at=1.0)
    _feed(breaker, "replica-1", 2000, 8, at=1.0)
    assert breaker.tick(1.1) == []


def test_too_few_samples_or_no_peers_give_no_verdict() -> None:
    breaker = _breaker()
    _healthy(breaker, "replica-2")
    _feed(breaker, "replica-1", 900, 4, at=1.0)
    assert breaker.tick(1.1) == []
    assert breaker.replicas["replica-1"].quantile_ms is None
    alone = _breaker()
    _feed(alone, "replica-1", 900, 20, at=1.0)  # nobody else answered: nothing to compare
    assert alone.tick(1.1) == []


def test_a_failing_replica_is_ejected() -> None:
    breaker = _breaker()
    _healthy(breaker, "replica-1", "replica-2")
    _feed(breaker, "replica-3", 3, 20, at=1.0, failed=True)  # fast, but every answer a 500
    assert breaker.tick(1.1) == [Action("replica-3", state="maint")]


def test_all_failing_together_is_not_an_outlier() -> None:
    breaker = _breaker()
    for name in THREE:
        _feed(breaker, name, 3, 20, at=1.0, failed=True)
    assert breaker.tick(1.1) == []


def test_no_response_at_all_counts_as_slow() -> None:
    breaker = _breaker()
    _healthy(breaker, "replica-2", "replica-3")
    _feed(breaker, "replica-1", math.inf, 5, at=1.0)
    assert breaker.tick(1.1) == [Action("replica-1", state="maint")]


@pytest.mark.parametrize(("replicas", "bad", "share", "out"), [
    (2, 1, 1 / 3, 1),  # one may always be out: the single bad replica of two still goes
    (3, 2, 1 / 3, 1),
    (5, 2, 1 / 3, 1),
    (6, 2, 1 / 3, 2),
    (5, 2, 0.5, 2),
])
@pytest.mark.parametrize("how", ["slow", "failing"])
def test_the_share_of_replicas_out_at_once_is_capped(replicas: int, bad: int, share: float,
                                                     out: int, how: str) -> None:
    names = [f"replica-{i}" for i in range(1, replicas + 1)]
    breaker = _breaker(names, max_ejected_share=share)
    for index, name in enumerate(names):
        if index >= bad:
            _feed(breaker, name, 10, 20, at=1.0)
        elif how == "slow":
            _feed(breaker, name, 500, 20, at=1.0)
        else:
            _feed(breaker, name, 10, 20, at=1.0, failed=True)
    breaker.tick(1.1)
    if how == "slow" and replicas < 2 * bad:
        out = 0  # most peers slow too: the slow are no outliers, the stack is overloaded
    assert sum(b.state == OPEN for b in breaker.replicas.values()) == out


def test_never_the_last_replica_serving() -> None:
    breaker = _breaker(max_ejected_share=0.9)  # the share alone would allow two out
    breaker.down = {"replica-3"}  # HAProxy's health checks took it out
    _feed(breaker, "replica-1", 500, 20, at=1.0, failed=True)
    _feed(breaker, "replica-2", 500, 20, at=1.0, failed=True)
    _feed(breaker, "replica-3", 10, 20, at=1.0)
    breaker.tick(1.1)
    serving = [b.name for b in breaker.replicas.values()
               if b.state != OPEN and b.name not in breaker.down]
    assert len(serving) == 1


def test_old_samples_leave_the_window() -> None:
    breaker = _breaker()
    _feed(breaker, "replica-1", 5, 100, at=0.5)
    _feed(breaker, "replica-1", 300, 10, at=2.0)
    _healthy(breaker, "replica-2", "replica-3", at=2.0)
    assert breaker.tick(2.1) == []  # the fast ones still dominate
    assert breaker.tick(2.6) == [Action("replica-1", state="maint")]  # now they are gone


def test_open_then_recovering_with_a_growing_weight_then_closed() -> None:
    breaker = _breaker(fallback_s=10.0, recovery_s=10.0)
    _healthy(breaker, "replica-2", "replica-3")
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
    assert [e.state for e in breaker.events] == [OPEN, RECOVERING, CLOSED]


def test_still_an_outlier_while_recovering_goes_out_again() -> None:
    breaker = _breaker(fallback_s=1.0)
    _healthy(breaker, "replica-2", "replica-3", at=0.5)
    _feed(breaker, "replica-1", 300, 5, at=0.5)
    breaker.tick(0.5)
    breaker.tick(1.6)
    assert breaker.replicas["replica-1"].state == RECOVERING
    _healthy(breaker, "replica-2", "replica-3", at=2.0)
    _feed(breaker, "replica-1", 250, 5, at=2.0)
    assert breaker.tick(2.1) == [Action("replica-1", state="maint")]
    assert breaker.replicas["replica-1"].trips == 2


def test_paused_or_off_it_ejects_nothing_and_brings_back_what_is_out() -> None:
    breaker = _breaker()
    _healthy(breaker, "replica-2", "replica-3")
    _feed(breaker, "replica-1", 300, 10, at=1.0)
    breaker.tick(1.0)
    assert breaker.replicas["replica-1"].state == OPEN
    breaker.paused = True
    assert Action("replica-1", state="ready") in breaker.tick(1.2)
    _feed(breaker, "replica-1", 300, 10, at=1.3)
    assert breaker.tick(1.4) == []
    off = _breaker(enabled=False)
    _healthy(off, "replica-2", "replica-3")
    _feed(off, "replica-1", 300, 10, at=1.0)
    assert off.tick(1.1) == [] and off.replicas["replica-1"].state == CLOSED


def test_unknown_replicas_are_ignored() -> None:
    breaker = _breaker()
    _feed(breaker, "replica-9", 900, 50, at=1.0)
    assert breaker.tick(1.1) == []


def test_percentiles_other_than_the_median() -> None:
    breaker = _breaker(quantile=90.0)
    _healthy(breaker, "replica-2", "replica-3")
    _feed(breaker, "replica-1", 5, 85, at=1.0)
    _feed(breaker, "replica-1", 500, 15, at=1.0)
    assert breaker.tick(1.1) == [Action("replica-1", state="maint")]


def _stat(name: str, status: str, weight: int = 100) -> ServerStat:
    return ServerStat(name=name, status=status, check_status="L7OK", weight=weight, requests=0,
                      errors_5xx=0, retries=0, redispatches=0, response_ms=0,
                      current_sessions=0)


def test_reconcile_puts_haproxy_back_in_line_with_the_breakers() -> None:
    breaker = _breaker(TWO)
    _healthy(breaker, "replica-2")
    _feed(breaker, "replica-1", 300, 5, at=1.0)
    breaker.tick(1.0)  # replica-1 open
    # HAProxy restarted and forgot: replica-1 is UP again; replica-2 was left in MAINT by a
    # previous watcher.
    actions = reconcile(breaker, [_stat("replica-1", "UP"), _stat("replica-2", "MAINT"),
                                  _stat("replica-9", "MAINT")])
    assert actions == [Action("replica-1", state="maint"), Action("replica-2", state="ready")]
    assert reconcile(breaker, [_stat("replica-1", "MAINT"), _stat("replica-2", "UP")]) == []
    reconcile(breaker, [_stat("replica-1", "MAINT"), _stat("replica-2", "DOWN")])
    assert breaker.down == {"replica-2"}


def test_reconcile_restores_a_lost_recovery_weight() -> None:
    breaker = _breaker(TWO, fallback_s=1.0)
    _healthy(breaker, "replica-2", at=0.5)
    _feed(breaker, "replica-1", 300, 5, at=0.5)
    breaker.tick(0.5)
    breaker.tick(1.6)  # recovering at 10%
    assert reconcile(breaker, [_stat("replica-1", "UP", weight=100)]) == [
        Action("replica-1", weight=10)]
    assert reconcile(breaker, [_stat("replica-1", "UP", weight=10)]) == []


def test_haproxy_log_lines() -> None:
    page = "/api/v1/alumno/alumno"
    assert parse_log_line(f"replica-2 12 200 ---- {page}\n".encode()) == LogLine(
        "replica-2", 12.0, 200, "----", page)
    line = parse_log_line(b"replica-1 -1 502 SH-- /api/v1/ping")
    assert line is not None and math.isinf(line.server_ms) and line.failed and line.judged
    health = parse_log_line(b"replica-1 1 200 ---- /health")
    assert health is not None and not health.judged  # says nothing of how pages are served
    assert parse_log_line(b"garbage") is None
    assert parse_log_line(b"replica-1 abc 200 ---- /api/v1/ping") is None
    assert parse_log_line(b"replica-1 12 200") is None  # the old three-field shape


# The lines HAProxy 2.6 writes in each case (seen on a real stack: a rate limit over a
# burst, replicas frozen under 500 concurrent requests, replicas stopped).
@pytest.mark.parametrize(("line", "reason"), [
    (b"replica-1 12 200 ---- /api/v1/ping", None),
    (b"replica-1 12 500 ---- /api/v1/ping", None),  # the replica answered, badly
    (b"replica-1 -1 504 sH-- /api/v1/ping", None),  # the replica never answered
    (b"<NOSRV> -1 503 SC-- /api/v1/ping", "no_replica"),
    (b"<NOSRV> -1 503 sQ-- /api/v1/ping", "queue_timeout"),
    (b"<NOSRV> -1 503 LR-- /api/v1/ping", "queue_full"),
    (b"<NOSRV> -1 429 LR-- /api/v1/ping", "rate_limit"),
    (b"<NOSRV> -1 429 PR-- /api/v1/ping", "rate_limit"),  # a deny rule, were one used
])
def test_what_the_balancer_refused_and_why(line: bytes, reason: str | None) -> None:
    parsed = parse_log_line(line)
    assert parsed is not None and parsed.refusal == reason
    counts = Counts()
    counts.add(parsed)
    assert counts.responses == 1
    assert sum(counts.refused.values()) == (reason is not None)
