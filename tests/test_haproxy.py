"""HAProxy's configuration from the patterns spec, judged by the real haproxy binary."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from alumnos_cli.stack.haproxy import (
    BalancerPaths,
    Replica,
    check_config,
    find_haproxy,
    haproxy_config,
)
from alumnos_cli.stack.patterns import PatternsSpec, parse_rate_limit

REPLICAS = [Replica("replica-1", "127.0.0.1", 18081), Replica("replica-2", "127.0.0.1", 18082)]
SWITCHES = list(itertools.product([True, False], repeat=3))


def _config(spec: PatternsSpec, *, log_ring: bool = True, slots: int = 4) -> str:
    return haproxy_config(spec, REPLICAS, "127.0.0.1", 18080,
                          BalancerPaths(Path("/tmp/alumnos-test.sock"), log_ring), slots)


@pytest.mark.parametrize(("retry", "rate_limit", "breaker"), SWITCHES)
def test_every_combination_of_patterns_is_a_valid_haproxy_configuration(
        tmp_path: Path, retry: bool, rate_limit: bool, breaker: bool) -> None:
    spec = PatternsSpec(retry=retry, rate_limit=rate_limit, circuit_breaker=breaker)
    path = tmp_path / "haproxy.cfg"
    path.write_text(_config(spec, log_ring=breaker))
    assert check_config(find_haproxy(), path) is None


def test_haproxy_reports_what_it_rejects(tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(_config(PatternsSpec()).replace("balance roundrobin", "balance nonsense"))
    problem = check_config(find_haproxy(), path)
    assert problem is not None and "balance only supports 'roundrobin'" in problem


def test_the_numbers_come_from_the_spec() -> None:
    spec = PatternsSpec(retry_attempts=5, rate_limit_average=42, rate_limit_period_s=10,
                        health_interval_ms=700, health_fall=4, health_rise=3)
    text = _config(spec)
    assert "    retries 4\n" in text  # attempts count the first try, as Traefik's do
    assert "option redispatch 1" in text
    # Never after a timeout (under overload that multiplies the load), nor once the queue is
    # half way to refusals: 2 replicas x 4 slots x 50 per slot = 400, half of it 200.
    assert "retry-on conn-failure empty-response\n" in text
    assert "disable-l7-retry unless METH_GET || METH_HEAD || METH_OPTIONS" in text
    assert "disable-l7-retry if { queue(replicas) ge 200 }" in text
    assert "if { sc_gpc0_rate(0) ge 42 }" in text
    assert "store gpc0_rate(10s)" in text
    assert "hdr Retry-After 10" in text
    assert "check inter 700ms fall 4 rise 3" in text
    assert "option httpchk GET /health" in text
    assert "balance roundrobin" in text
    assert [line.split()[1] for line in text.splitlines() if line.startswith("    server ")] \
        == ["replica-1", "replica-2"]


def test_admission_control_admits_a_few_per_thread_a_replica_runs() -> None:
    spec = PatternsSpec(queue_timeout_s=3, queue_per_slot=10, server_timeout_s=12,
                        admitted_per_slot=2)
    text = _config(spec, slots=6)
    assert "maxconn 12 weight 100" in text  # Granian workers x blocking threads x 2
    assert "timeout queue 3s" in text and "timeout server 12s" in text
    # 2 replicas x 6 slots x 10 queued per slot: beyond that, refused at once.
    assert "if { queue(replicas) ge 120 }" in text
    assert "observe layer7" not in text  # HAProxy would mark every replica down in overload


def test_log_lines_go_to_a_ring_in_haproxy_with_how_each_request_ended() -> None:
    text = _config(PatternsSpec())
    assert "log ring@responses len 256 format raw local0" in text
    assert "ring responses\n    format raw\n    maxlen 256\n    size 33554432" in text
    assert 'log-format "%s %Tr %ST %tsc %HP"' in text
    # Nothing listens for log lines: no UDP port, no socket anyone could send to.
    assert [line for line in text.splitlines() if line.strip().startswith("log ")] == [
        "    log ring@responses len 256 format raw local0", "    log global"]


def test_switched_off_patterns_leave_no_trace() -> None:
    text = _config(PatternsSpec(retry=False, rate_limit=False, circuit_breaker=False),
                   log_ring=False)
    assert "retries 0" in text and "no option redispatch" in text
    assert "retry-on" not in text
    assert "track-sc0" not in text and "429" not in text
    assert "observe layer7" not in text
    assert "log /" not in text


def test_problem_bodies_are_json_problems() -> None:
    bodies = re.findall(r"string '([^']*)'", _config(PatternsSpec()))
    documents = [json.loads(body) for body in bodies]
    assert {d["status"] for d in documents} == {429, 503}
    for document in documents:
        assert set(document) == {"type", "title", "status", "detail"}
        assert document["type"].startswith("https://alumnos.universidad.localhost/problems/")


@pytest.mark.parametrize(("text", "expected"), [
    ("100/s", (100, 1)), ("50/10s", (50, 10)), ("600/m", (600, 60)), (" 7 / 2s ", (7, 2)),
    ("off", None), ("OFF", None), ("0", None),
])
def test_rate_limits_parse(text: str, expected: tuple[int, int] | None) -> None:
    assert parse_rate_limit(text) == expected


@pytest.mark.parametrize("text", ["100", "fast", "-1/s", "0/s", "10/0s", "10/h"])
def test_bad_rate_limits_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="looks like 100/s"):
        parse_rate_limit(text)


def test_the_rate_limit_reads_as_the_flag_writes_it() -> None:
    assert PatternsSpec().rate_limit_text == "100/s"
    assert replace(PatternsSpec(), rate_limit_period_s=10, rate_limit_average=5).rate_limit_text \
        == "5/10s"
    assert PatternsSpec(rate_limit=False).rate_limit_text == "off"
