"""HAProxy before the local replicas: its configuration from the patterns spec; its runtime API.

Each pattern maps onto HAProxy as follows (the compose file does the same with Traefik labels):
- balancing: round robin over the replicas, active checks on the health path;
- admission control: each replica gets a few requests per thread it runs at once (`maxconn`:
  Granian workers x blocking threads x admitted_per_slot); the rest waits in HAProxy's queue
  for a bounded time, and a queue that is already long is refused at once: overload gives
  fast 503s, not an outage;
- retry: `retries` + `redispatch` to another replica on connection failure or an empty
  response, never once the queue is half way to refusals (overload: a retry then only adds
  load) and never after a timeout; requests that are not idempotent are retried only when they
  never reached a server;
- rate limit: a per-source-address counter of *accepted* requests, so a client over the limit
  still gets its share through, as with Traefik's token bucket;
- circuit breaker: HAProxy logs every response (server, server time, status, how it ended) to
  the watcher (alumnos_cli/stack/breaker.py) on a Unix socket only its owner can write to; the
  watcher ejects a replica that is slow or failing compared with its peers, through the
  runtime API, and counts what the balancer refused and why.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from alumnos_cli.errors import AlumnosError
from alumnos_cli.stack.patterns import PatternsSpec
from alumnos_service.problems import PROBLEM_TYPE_BASE

BACKEND = "replicas"
FRONTEND = "alumnos"
CACHE_TABLE = "cache_outcomes"
RATE_TABLE = "client_rates"
FULL_WEIGHT = 100
LOG_RING = "responses"  # the ring of one line per response, which the watcher follows
LOG_LINE_BYTES = 256
# About a minute of lines at 10,000 responses a second: room for a watcher that lags a moment.
LOG_RING_BYTES = 32 * 2**20


@dataclass(frozen=True)
class Replica:
    """One service replica as the balancer sees it."""

    name: str
    host: str
    port: int


@dataclass(frozen=True)
class BalancerPaths:
    """Where HAProxy finds its runtime socket and sends its log lines."""

    runtime_socket: Path
    log_ring: bool  # keep a line per response in a ring the watcher follows
    metrics_port: int | None = None  # HAProxy's own Prometheus exporter, on 127.0.0.1


def find_haproxy() -> Path:
    """The haproxy binary on PATH or in /usr/sbin, or an error saying how to install it."""
    for candidate in (shutil.which("haproxy"), "/usr/sbin/haproxy"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise AlumnosError("HAProxy is not installed; local mode uses it as the load balancer",
                       "install it (apt-get install haproxy), or run one replica without "
                       "a balancer: alumnos up --replicas 1 --no-balancer")


def _problem(status: int, title: str, detail: str, slug: str) -> str:
    body = json.dumps({"type": PROBLEM_TYPE_BASE + slug, "title": title,
                       "status": status, "detail": detail}, separators=(",", ":"))
    # HAProxy strings are single-quoted: the JSON holds no single quote.
    return f"'{body}'"


def haproxy_config(spec: PatternsSpec, replicas: list[Replica], bind_host: str, bind_port: int,
                   paths: BalancerPaths, slots: int) -> str:
    """The whole haproxy.cfg for these replicas, patterns switched on or off as the spec says;
    `slots` is what one replica runs at once (Granian workers x blocking threads)."""
    lines = _global_section(paths) + _defaults_section(spec)
    lines += _frontend_section(spec, bind_host, bind_port, paths)
    lines += _backend_section(spec, replicas, slots)
    lines += [f"backend {CACHE_TABLE}",
              # The balancer's own count of X-Cache outcomes, across every replica and worker.
              "    stick-table type string len 16 size 16 store gpc0", ""]
    if paths.metrics_port is not None:
        lines += _metrics_section(paths.metrics_port)
    if spec.rate_limit:
        expire = max(60, 2 * spec.rate_limit_period_s)
        lines += [f"backend {RATE_TABLE}",
                  f"    stick-table type ip size 1m expire {expire}s "
                  f"store gpc0_rate({spec.rate_limit_period_s}s)", ""]
    return "\n".join(lines)


def _global_section(paths: BalancerPaths) -> list[str]:
    lines = ["global",
             # Single quotes: no expansion inside; `up` refused quotes in the path.
             f"    stats socket '{paths.runtime_socket}' mode 600 level admin",
             "    maxconn 8000"]
    if paths.log_ring:
        # A line per response into a ring in HAProxy's memory, which the watcher follows on
        # the runtime socket (`show events`): nothing else can write to it, and a watcher a
        # moment behind loses nothing (a datagram socket queues only ten lines).
        lines.append(f"    log ring@{LOG_RING} len {LOG_LINE_BYTES} format raw local0")
        lines += ["", f"ring {LOG_RING}", "    format raw", f"    maxlen {LOG_LINE_BYTES}",
                  f"    size {LOG_RING_BYTES}"]
    return [*lines, ""]


def _defaults_section(spec: PatternsSpec) -> list[str]:
    return ["defaults",
            "    mode http",
            "    timeout connect 1s",
            "    timeout client 60s",
            # Longer than the service's own bounds on a request (statement and pool timeouts):
            # the service answers 503 itself before the balancer would cut it.
            f"    timeout server {spec.server_timeout_s}s",
            "    timeout http-keep-alive 60s",
            f"    timeout queue {spec.queue_timeout_s}s",
            ""]


def _metrics_section(port: int) -> list[str]:
    # The exporter built into HAProxy (USE_PROMEX), on loopback, in a frontend that logs
    # nothing: its scrapes never reach the watcher's ring or the replicas' counts.
    return ["frontend metrics", f"    bind 127.0.0.1:{port}",
            "    http-request use-service prometheus-exporter if { path /metrics }",
            "    http-request return status 404", ""]


def _frontend_section(spec: PatternsSpec, host: str, port: int, paths: BalancerPaths) -> list[str]:
    lines = [f"frontend {FRONTEND}", f"    bind {host}:{port}"]
    if paths.log_ring:
        lines += ["    log global",
                  # server, server response time (ms, -1 when none), status, how it ended, path
                  '    log-format "%s %Tr %ST %tsc %HP"']
    if spec.rate_limit:
        detail = (f"more than {spec.rate_limit_average} requests in "
                  f"{spec.rate_limit_period_s} s from this address; slow down")
        lines += [
            f"    http-request track-sc0 src table {RATE_TABLE}",
            f"    http-request return status 429 content-type application/problem+json "
            f"hdr Retry-After {spec.rate_limit_period_s} "
            f"string {_problem(429, 'Too Many Requests', detail, 'rate-limited')} "
            f"if {{ sc_gpc0_rate(0) ge {spec.rate_limit_average} }}",
            # Counted only once accepted: a client over the limit keeps the limit's throughput.
            "    http-request sc-inc-gpc0(0)",
        ]
    lines += [f"    http-response track-sc1 res.hdr(X-Cache) table {CACHE_TABLE} "
              "if { res.hdr(X-Cache) -m found }",
              "    http-response sc-inc-gpc0(1) if { res.hdr(X-Cache) -m found }",
              f"    default_backend {BACKEND}", ""]
    return lines


def _backend_section(spec: PatternsSpec, replicas: list[Replica], slots: int) -> list[str]:
    unavailable = _problem(503, "Service Unavailable",
                           "no replica can take the request now (none healthy, or all busy "
                           f"for more than {spec.queue_timeout_s} s); retry shortly",
                           "no-replica-available")
    overloaded = _problem(503, "Service Unavailable",
                          "the service is at capacity and its queue is full; retry shortly",
                          "overloaded")
    max_queue = slots * len(replicas) * spec.queue_per_slot
    lines = [f"backend {BACKEND}",
             "    balance roundrobin",
             f"    option httpchk GET {spec.health_path}",
             "    http-check expect status 200",
             # Refused at once when the queue is already longer than the replicas drain soon.
             f"    http-request return status 503 content-type application/problem+json "
             f"hdr Retry-After 1 string {overloaded} if {{ queue({BACKEND}) ge {max_queue} }}",
             f"    http-error status 503 content-type application/problem+json "
             f"hdr Retry-After 1 string {unavailable}"]
    if spec.retry:
        lines += [f"    retries {spec.retry_attempts - 1}",
                  "    option redispatch 1",
                  # Not response-timeout: a request that timed out under overload, retried,
                  # only multiplies the load.
                  "    retry-on conn-failure empty-response",
                  # Only connection failures (the request never left) for the others.
                  "    http-request disable-l7-retry unless METH_GET || METH_HEAD || METH_OPTIONS",
                  # The retry budget: none once the queue is half way to refusals. A closed-model
                  # load always keeps some requests queued; a queue that long means overload,
                  # where a retry only adds load (a dead replica's requests still are retried).
                  f"    http-request disable-l7-retry if {{ queue({BACKEND}) ge "
                  f"{max(1, max_queue // 2)} }}"]
    else:
        lines += ["    retries 0", "    no option redispatch"]
    # weight 100, not HAProxy's default of 1: the breaker's recovery ramp sets percentages of
    # it, and 10% of 1 rounds down to 0. maxconn: a few per thread the replica runs at once;
    # what waits beyond them waits in HAProxy's queue, which the balancer sees and bounds.
    server = (f"check inter {spec.health_interval_ms}ms fall {spec.health_fall} "
              f"rise {spec.health_rise} maxconn {slots * spec.admitted_per_slot} "
              f"weight {FULL_WEIGHT}")
    # A replica that refuses connections is dead: down after a few, without waiting for the
    # health checks (with every other replica's slots taken, a retry has nowhere else to go).
    # Not on its 5xx (layer7): under overload every replica answers some, and marking them
    # down would turn a slowdown into an outage.
    server += f" observe layer4 error-limit {spec.dead_after_failures} on-error mark-down"
    lines.append(f"    default-server {server}")
    lines += [f"    server {r.name} {r.host}:{r.port}" for r in replicas]
    return [*lines, ""]


def check_config(binary: Path, config: Path) -> str | None:
    """HAProxy's own verdict on a configuration file: None when valid, else its message."""
    result = subprocess.run([str(binary), "-c", "-f", str(config)],
                            capture_output=True, text=True, check=False)
    if result.returncode == 0:
        return None
    output = (result.stderr + result.stdout).splitlines()
    alerts = [line.split(" : ", 2)[-1] for line in output if "[ALERT]" in line]
    return " | ".join(alerts) or "\n".join(output).strip()


# --- the runtime API (stats socket) ------------------------------------------------------


def _no_answer(socket_path: Path, exc: OSError) -> AlumnosError:
    return AlumnosError(f"HAProxy's runtime socket {socket_path} does not answer ({exc})",
                        "alumnos status shows whether the balancer runs; "
                        "alumnos logs haproxy shows why")


def _send(socket_path: Path, command: str, timeout: float) -> socket.socket:
    """A connection to the runtime API that has sent `command`; the caller reads and closes."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(str(socket_path))
        sock.sendall(command.encode() + b"\n")
    except OSError as exc:
        sock.close()
        raise _no_answer(socket_path, exc) from None
    return sock


def runtime_command(socket_path: Path, command: str, timeout: float = 2.0) -> str:
    """Send one command to HAProxy's runtime API and return its answer."""
    chunks = []
    with _send(socket_path, command, timeout) as sock:
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError as exc:
            raise _no_answer(socket_path, exc) from None
    return b"".join(chunks).decode(errors="replace")


@dataclass(frozen=True)
class ServerStat:
    """One replica as HAProxy sees it (a row of `show stat`)."""

    name: str
    status: str  # UP, DOWN, MAINT, "UP 1/2" while rising...
    check_status: str
    weight: int
    requests: int  # responses counted by status class: what the replica served
    errors_5xx: int
    retries: int
    redispatches: int
    response_ms: int  # average server response time over the last 1024 requests
    current_sessions: int


def follow_log(socket_path: Path, timeout: float = 2.0) -> socket.socket:
    """A connection to the runtime socket that streams each new line of the response ring.

    HAProxy holds the lines a slow reader has not read yet (up to the ring's size); the
    connection ends when HAProxy stops."""
    # -w: wait for new lines; -n: from now on, not what the ring already holds.
    return _send(socket_path, f"show events {LOG_RING} -w -n", timeout)


def server_stats(socket_path: Path) -> list[ServerStat]:
    """Each replica's state and counters, from `show stat`."""
    text = runtime_command(socket_path, "show stat")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# pxname"):
        raise AlumnosError(f"HAProxy answered `show stat` with {text[:80]!r}",
                           "alumnos logs haproxy shows what it is doing")
    header, *rows = lines
    names = header.lstrip("# ").split(",")
    stats = []
    for row in rows:
        record = dict(zip(names, row.split(","), strict=False))
        if record.get("pxname") != BACKEND or record.get("svname") in {"FRONTEND", "BACKEND"}:
            continue
        stats.append(ServerStat(
            name=record["svname"], status=record.get("status", ""),
            check_status=record.get("check_status", ""), weight=_int(record.get("weight")),
            requests=sum(_int(record.get(f"hrsp_{k}xx")) for k in range(1, 6)),
            errors_5xx=_int(record.get("hrsp_5xx")), retries=_int(record.get("wretr")),
            redispatches=_int(record.get("wredis")), response_ms=_int(record.get("rtime")),
            current_sessions=_int(record.get("scur"))))
    return stats


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def cache_outcomes(socket_path: Path) -> dict[str, int]:
    """Responses by X-Cache value (HIT, MISS, BYPASS) counted by the balancer since it started."""
    text = runtime_command(socket_path, f"show table {CACHE_TABLE}")
    outcomes: dict[str, int] = {}
    for line in text.splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if "key" in fields and "gpc0" in fields:
            outcomes[fields["key"]] = int(fields["gpc0"])
    return outcomes


def set_server_state(socket_path: Path, server: str, state: str) -> None:
    """Put a replica in `ready`, `drain` or `maint`."""
    _expect_empty(runtime_command(socket_path, f"set server {BACKEND}/{server} state {state}"))


def set_server_weight(socket_path: Path, server: str, percent: int) -> None:
    """Give a replica a share of its initial weight (the breaker's recovery ramp)."""
    _expect_empty(runtime_command(socket_path, f"set server {BACKEND}/{server} weight {percent}%"))


def _expect_empty(answer: str) -> None:
    if answer.strip():
        raise AlumnosError(f"HAProxy refused a runtime command: {answer.strip()}")
