"""One scenario from several k6 hosts at once, as k6-operator runs it: the test shipped as a
`k6 archive`, split with execution segments, every instance started paused, checked ready,
resumed together through its REST API, watched, collected, and merged into one summary.

If one instance fails, or the user presses Ctrl-C, every instance is stopped and its folder
removed; what was collected is kept in the run folder (`generators/<host>/`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from alumnos_cli.bench.generators.abort import DELAY_S, EVERY_S, AbortRule, crossed
from alumnos_cli.bench.generators.instance import (
    CPU_FILE,
    HALTED,
    LOST,
    STAT_AFTER,
    STAT_BEFORE,
    Instance,
    cpu_seconds,
)
from alumnos_cli.bench.generators.merge import QUANTILE_STATS, merge_summaries
from alumnos_cli.bench.generators.shell import GeneratorError, Shell, SshShell
from alumnos_cli.bench.generators.spec import Generator, segments
from alumnos_cli.bench.k6 import (
    THRESHOLDS_FAILED,
    K6Outcome,
    LiveSample,
    busy_share,
    machine_ticks,
    recording_only_env,
    ticks_of,
)
from alumnos_cli.bench.remote_write import (
    RUN_LABEL,
    base_url,
    remote_write_args,
    remote_write_env,
    run_id,
)
from alumnos_cli.bench.server_prometheus import PrometheusUnreadable, prometheus_api
from alumnos_cli.files import read_json, write_json
from alumnos_cli.runfolder import GENERATORS_DIR, K6_LOG_FILE, SUMMARY_FILE, TIMESERIES_FILE

GENERATOR_LABEL = "generator"
# What the scripts must know of a split run (k6/lib/config.js: no aborting on a share).
SEGMENTED = {"SEGMENTED": "1"}

Sample = Callable[[LiveSample], None]


def run_distributed(binary: Path, script: Path, settings: dict[str, str],
                    generators: tuple[Generator, ...], run_dir: Path, *,
                    prometheus_url: str | None, ssh_config: Path | None,
                    timeseries: bool = True, on_sample: Sample | None = None,
                    abort: AbortRule | None = None,
                    extra_args: tuple[str, ...] = ()) -> K6Outcome:
    """Run the scenario `script` with the k6 settings `settings` on every generator, each
    its segment; the merged summary in run_dir, each generator's files below it.
    `abort`: stop every instance once the whole load crosses a threshold (stress, abort.py).
    `extra_args` go to every instance's `k6 run` (the tests add a raw output)."""
    sequence, own = segments(len(generators))
    with _control_dir() as control, ThreadPoolExecutor(len(generators)) as pool:
        instances = [Instance(_shell(g, control, ssh_config), segment)
                     for g, segment in zip(generators, own, strict=True)]
        started = time.monotonic()
        machine_before = machine_ticks()
        try:
            _on_each(pool, Instance.prepare, instances)
            archive = _archive(binary, script, {**settings, **SEGMENTED,
                                                "SUMMARY_PATH": SUMMARY_FILE}, control)
            _on_each(pool, lambda i: i.ship(archive), instances)
            for instance in instances:
                env, args = _instance_env(instance, run_dir, prometheus_url,
                                          timeseries=timeseries)
                instance.start([*args, "--execution-segment-sequence", sequence,
                                "--no-color", "--quiet", *extra_args], env,
                               control / f"{instance.name}.ssh.log")
            _on_each(pool, Instance.wait_ready, instances)
            _on_each(pool, Instance.resume, instances)
            judge = _judge(abort, prometheus_url, run_dir)
            codes, stopped = _watch(instances, on_sample, judge)
            _collect(instances, run_dir)
        except BaseException:
            # Every host told to stop at once, then what each had written collected.
            _on_each(pool, Instance.halt_now, instances)
            _on_each(pool, Instance.wait_ended, instances)
            _collect(instances, run_dir, quietly=True)
            raise
        finally:
            _on_each(pool, _stop_quietly, instances)
        wall = time.monotonic() - started
        machine_after = machine_ticks()
    outcome = _merged(instances, codes, run_dir, prometheus_url, wall,
                      (machine_before, machine_after))
    if stopped is not None:
        # Crossed on the whole load: failed, whatever the sub-metrics say at the end.
        outcome.usage["stopped"] = stopped
        return replace(outcome, exit_code=THRESHOLDS_FAILED)
    return outcome


def _on_each(pool: ThreadPoolExecutor, step: Callable[[Instance], object],
             instances: list[Instance]) -> None:
    """`step` on every instance at once; when all have ended (none still at work on a host
    while the others are stopped), the first failure, in the order the hosts were given."""
    futures = [pool.submit(step, instance) for instance in instances]
    concurrent.futures.wait(futures)
    for future in futures:
        failure = future.exception()
        if failure is not None:
            raise failure


@contextmanager
def _control_dir() -> Iterator[Path]:
    """A private folder for SSH control sockets and the archive; short, since a socket's path
    is limited to about 100 bytes."""
    with tempfile.TemporaryDirectory(prefix="alumnos-gen-") as folder:
        yield Path(folder)


def _shell(generator: Generator, control: Path, ssh_config: Path | None) -> Shell:
    return Shell(generator) if generator.local else SshShell(generator, control, ssh_config)


def _archive(binary: Path, script: Path, settings: dict[str, str], folder: Path) -> bytes:
    """The test as one file, settings inside (`-e`), so every host runs the same thing."""
    target = folder / "archive.tar"
    argv = [str(binary), "archive", "--quiet", "-O", str(target),
            *(arg for key, value in settings.items() for arg in ("-e", f"{key}={value}")),
            str(script)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, cwd=script.parent,
                              check=False, timeout=120)
    except subprocess.TimeoutExpired:
        raise GeneratorError("k6 archive did not finish within 120 s") from None
    if done.returncode != 0:
        raise GeneratorError(f"k6 archive failed: {done.stderr.strip()[-300:]}")
    return target.read_bytes()


def _instance_env(instance: Instance, run_dir: Path, prometheus_url: str | None, *,
                  timeseries: bool) -> tuple[dict[str, str], list[str]]:
    """One instance's environment and extra arguments: its recording in its own folder, its
    Prometheus writes through the SSH connection, tagged with the run and the generator."""
    env = {"K6_NO_USAGE_REPORT": "true"}
    if timeseries:
        env.update(recording_only_env(TIMESERIES_FILE))
    args: list[str] = []
    if prometheus_url is not None:
        host_port = instance.shell.forward_from_host(_port_of(prometheus_url))
        env.update(remote_write_env(f"http://127.0.0.1:{host_port}"))
        args = [*remote_write_args(run_dir), "--tag", f"{GENERATOR_LABEL}={instance.name}"]
    return env, args


def _port_of(url: str) -> int:
    parts = urllib.parse.urlsplit(base_url(url))
    # The reverse forward reaches 127.0.0.1 here: another loopback address is not it.
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise GeneratorError(f"generators reach Prometheus through SSH, so it must be on this "
                             f"machine's loopback, not {parts.hostname}")
    return parts.port or 80


Judge = Callable[[list[Instance]], str | None]


def _judge(rule: AbortRule | None, prometheus_url: str | None, run_dir: Path) -> Judge | None:
    """The controller's stress judgement over every instance, or None for a scenario that
    runs to its end."""
    if rule is None:
        return None
    scenario = rule.scenario
    quantiles = _prometheus_quantiles(prometheus_url, run_dir) if prometheus_url else None

    def merged_p95() -> float | None:
        found = quantiles(f"http_req_duration{{scenario:{scenario}}}") if quantiles else None
        return found.get("p(95)") if found else None

    def judge(instances: list[Instance]) -> str | None:
        parts = [p for p in (i.progress() for i in instances) if p is not None]
        return crossed(rule, parts, merged_p95 if quantiles else None) if parts else None

    return judge


def _watch(instances: list[Instance], on_sample: Sample | None,
           judge: Judge | None) -> tuple[dict[str, int], str | None]:
    """Until every instance has ended; live progress summed over them; a stress run stopped
    everywhere once the whole load crosses a threshold (what was crossed, and when, is
    returned). One that fails stops the run (the caller stops the others)."""
    started = time.monotonic()
    codes: dict[str, int] = {}
    last: dict[str, LiveSample] = {}  # a finished generator keeps its last count
    stopped: str | None = None
    next_judgement = started + DELAY_S
    while len(codes) < len(instances):
        time.sleep(1.0)
        for instance in instances:
            process = instance.process
            if instance.name in codes or process is None or process.poll() is None:
                continue
            codes[instance.name] = process.returncode
            if process.returncode == LOST:
                raise instance.fail("the SSH connection was lost mid-run: "
                                    f"{instance.ssh_log_tail()}")
            if process.returncode not in (0, THRESHOLDS_FAILED) and not (
                    instance.halted and process.returncode == HALTED):
                raise instance.fail(f"k6 failed with exit code {process.returncode}: "
                                    f"{instance.log_tail()}")
        elapsed = time.monotonic() - started
        if judge is not None and stopped is None and time.monotonic() >= next_judgement:
            next_judgement += EVERY_S
            crossing = judge([i for i in instances if i.name not in codes])
            if crossing is not None:
                stopped = f"{crossing}, {elapsed:.0f} s after the start"
                for instance in instances:
                    instance.halt()
        if on_sample is not None:
            samples = {i.name: s for i in instances if i.name not in codes
                       for s in [i.sample(elapsed)] if s is not None}
            last.update(samples)
            if samples:
                on_sample(_total(last, elapsed))
    return codes, stopped


def _total(samples: dict[str, LiveSample], elapsed: float) -> LiveSample:
    """Every generator's last sample as one, with each one's requests."""
    requests = sum(s.requests for s in samples.values())
    failed = sum(s.failed_rate * s.requests for s in samples.values())
    return LiveSample(elapsed=elapsed, requests=requests,
                      failed_rate=failed / requests if requests else 0.0,
                      vus=sum(s.vus for s in samples.values()),
                      by_host=tuple((name, s.requests) for name, s in samples.items()))


def _collect(instances: list[Instance], run_dir: Path, *, quietly: bool = False) -> None:
    for instance in instances:
        if not instance.folder:
            continue
        try:
            instance.collect(run_dir / GENERATORS_DIR / instance.name)
        except GeneratorError:
            if not quietly:
                raise
        except (OSError, subprocess.SubprocessError) as exc:
            if not quietly:
                raise instance.fail(f"could not send back its results ({exc})") from None


def _stop_quietly(instance: Instance) -> None:
    # A host that died mid-run: nothing of ours can still run there.
    with contextlib.suppress(GeneratorError, OSError, subprocess.SubprocessError):
        instance.stop()


def _merged(instances: list[Instance], codes: dict[str, int], run_dir: Path,
            prometheus_url: str | None, wall: float,
            machine: tuple[tuple[int, int], tuple[int, int]]) -> K6Outcome:
    """The merged summary in the run folder, the thresholds judged on it, one row per
    generator in the outcome's usage."""
    folders = {i.name: run_dir / GENERATORS_DIR / i.name for i in instances}
    summaries = {name: read_json(folder / SUMMARY_FILE) for name, folder in folders.items()}
    quantiles = _prometheus_quantiles(prometheus_url, run_dir) if prometheus_url else None
    merged = merge_summaries(summaries, quantiles)
    write_json(run_dir / SUMMARY_FILE, merged)
    ok = all(v["ok"] for m in merged["metrics"].values()
             for v in (m.get("thresholds") or {}).values())
    rows = [_row(i, codes.get(i.name), summaries[i.name], folders[i.name]) for i in instances]
    (run_dir / K6_LOG_FILE).write_text("".join(
        f"== {i.name} ({i.segment}) ==\n{(folders[i.name] / K6_LOG_FILE).read_text()}\n"
        for i in instances if (folders[i.name] / K6_LOG_FILE).exists()))
    local_cpu = sum(r["cpu_seconds"] or 0.0 for r in rows if r["name"] == "local")
    usage: dict[str, Any] = {
        "k6_cpu_seconds": round(local_cpu, 2), "wall_seconds": round(wall, 2),
        "k6_cores": round(local_cpu / wall, 3) if wall else 0.0,
        "cpu_count": os.cpu_count() or 1,
        "machine_busy": busy_share(*machine) or 0.0,
        "generators": rows, "resume_spread_s": _spread(instances),
        "percentiles": merged["alumnos"]["percentiles"]}
    return K6Outcome(exit_code=0 if ok else THRESHOLDS_FAILED, log=run_dir / K6_LOG_FILE,
                     usage=usage)


def _row(instance: Instance, code: int | None, summary: dict[str, Any],
         folder: Path) -> dict[str, Any]:
    """A generator's own figures: its share of the requests and what it spent."""
    metrics = summary.get("metrics", {})
    requests = metrics.get("http_reqs", {}).get("values", {})
    duration = metrics.get("http_req_duration", {}).get("values", {})
    cpu_file = folder / CPU_FILE
    cpu = cpu_seconds(cpu_file.read_text()) if cpu_file.exists() else None
    facts = instance.facts
    before, after = (ticks_of(path.read_text()) if path.exists() else (0, 0)
                     for path in (folder / STAT_BEFORE, folder / STAT_AFTER))
    seconds = float(summary.get("state", {}).get("testRunDurationMs", 0)) / 1000
    return {"name": instance.name, "generator": instance.shell.generator.shown,
            "segment": instance.segment, "exit_code": code,
            "k6_version": facts.k6_version if facts else None,
            "k6_source": facts.k6_source if facts else None,
            "cores": facts.cores if facts else None,
            "clock_offset_s": facts.clock_offset_s if facts else None,
            "requests": int(requests.get("count", 0)),
            "requests_per_s": round(float(requests.get("rate", 0.0)), 1),
            "p95_ms": duration.get("p(95)"), "cpu_seconds": cpu,
            "cores_used": round(cpu / seconds, 3) if cpu is not None and seconds else None,
            "machine_busy": busy_share(before, after)}


def _spread(instances: list[Instance]) -> float | None:
    resumed = [i.resumed_at for i in instances if i.resumed_at is not None]
    return round(max(resumed) - min(resumed), 3) if len(resumed) > 1 else None


def _prometheus_quantiles(prometheus_url: str,
                          run_dir: Path) -> Callable[[str], dict[str, float] | None]:
    """The merged percentiles of a k6 time trend, from the native histograms every instance
    wrote into Prometheus with the run's id (whichever generator they came from)."""
    base = base_url(prometheus_url)

    def quantiles(metric: str) -> dict[str, float] | None:
        name, _, tags = metric.partition("{")
        if name not in ("http_req_duration", "iteration_duration") and \
                not name.startswith("http_req_"):
            return None
        labels = [f'{RUN_LABEL}="{run_id(run_dir)}"'] + [
            f'{key}="{value}"' for key, _, value in
            (tag.partition(":") for tag in tags.rstrip("}").split(",") if tag)]
        series = f"sum(k6_{name}_seconds{{{','.join(labels)}}})"
        found = {}
        try:
            for stat, q in QUANTILE_STATS.items():
                result = prometheus_api(base, "query", {
                    "query": f"histogram_quantile({q}, {series})"})
                if not result:
                    return None
                found[stat] = float(result[0]["value"][1]) * 1000
        except (PrometheusUnreadable, KeyError, IndexError, ValueError):
            return None
        return found

    return quantiles
