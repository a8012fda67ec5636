"""Commands on a generator host: this machine's shell, or one OpenSSH connection to another.

We drive the OpenSSH client rather than an SSH library: it honours the user's ~/.ssh/config,
agent, known hosts and jump hosts exactly as their own `ssh` does, and its connection
multiplexing (a master per host, ControlPath) carries every command, the file transfers and
the port forwards over one login. Host keys are checked as the user's ssh checks them
(BatchMode: never a prompt; an unknown or changed key is refused).
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from alumnos_cli.bench.generators.spec import Generator
from alumnos_cli.errors import AlumnosError
from alumnos_cli.stack.ports import free_port

SSH = "ssh"
CONNECT_TIMEOUT_S = 10
COMMAND_TIMEOUT_S = 120


class GeneratorError(AlumnosError):
    """A generator host that cannot take part: unreachable, refused, without k6, ..."""


@dataclass(frozen=True)
class Done:
    """A finished command: its exit code and output."""

    code: int
    stdout: str
    stderr: str


class Shell:
    """Runs shell commands on one host; this base class is this machine."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    def open(self) -> None:
        """Connect (nothing to do here)."""

    def close(self) -> None:
        """Disconnect, ending every forward (nothing to do here)."""

    def argv(self, command: str) -> list[str]:
        """The local command line that runs `command` (a POSIX shell command) on the host."""
        return ["/bin/sh", "-c", command]

    def run(self, command: str, *, stdin: bytes | None = None,
            timeout: float = COMMAND_TIMEOUT_S) -> Done:
        try:
            done = subprocess.run(self.argv(command), input=stdin, capture_output=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise GeneratorError(f"{self.generator.shown}: no answer within {timeout:.0f} s "
                                 f"to: {command}") from None
        return Done(done.returncode, done.stdout.decode(errors="replace"),
                    done.stderr.decode(errors="replace"))

    def popen(self, command: str, log: Path) -> subprocess.Popen[bytes]:
        """Start `command` on the host; its local end writes what it prints to `log`."""
        # A session of its own: Ctrl-C reaches alumnos, which stops k6 on every host in
        # order, not this process first.
        with log.open("wb") as out:
            return subprocess.Popen(self.argv(command), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def forward_to_host(self, host_port: int) -> int:
        """A port on this machine's loopback that reaches `host_port` on the host's."""
        return host_port

    def forward_from_host(self, local_port: int) -> int:
        """A port on the host's loopback that reaches `local_port` on this machine's."""
        return local_port


class SshShell(Shell):
    """One OpenSSH master connection to a generator host; every command, file and forward
    goes through it, and closing it ends them all."""

    def __init__(self, generator: Generator, control_dir: Path,
                 config: Path | None = None) -> None:
        super().__init__(generator)
        self.socket = control_dir / generator.name
        self.config = config

    def _options(self) -> list[str]:
        options = ["-F", str(self.config)] if self.config else []
        if self.generator.port:
            options += ["-p", str(self.generator.port)]
        return [*options, "-S", str(self.socket), "-o", "BatchMode=yes",
                "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}", "-o", "ServerAliveInterval=5",
                "-o", "ServerAliveCountMax=3", "-o", "ExitOnForwardFailure=yes"]

    def open(self) -> None:
        """Log in once (the master, in the background); a refusal names the host and why."""
        try:
            done = subprocess.run([SSH, *self._options(), "-M", "-N", "-f",
                                   "--", self.generator.destination], capture_output=True,
                                  text=True, timeout=CONNECT_TIMEOUT_S * 3, check=False)
        except subprocess.TimeoutExpired:
            raise GeneratorError(f"{self.generator.shown}: no SSH login within "
                                 f"{CONNECT_TIMEOUT_S * 3} s", "is the host up?") from None
        except FileNotFoundError:
            raise GeneratorError("no ssh client on this machine",
                                 "install OpenSSH's client (bash scripts/system-packages)") \
                from None
        if done.returncode != 0:
            raise GeneratorError(f"{self.generator.shown}: ssh failed: "
                                 f"{last_line(done.stderr)}", _login_hint(done.stderr))

    def close(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run([SSH, *self._options(), "-O", "exit", "--",
                            self.generator.destination], capture_output=True, timeout=30,
                           check=False)

    def argv(self, command: str) -> list[str]:
        # Run by /bin/sh whatever the user's login shell is (csh and fish read it otherwise).
        return [SSH, *self._options(), "--", self.generator.destination,
                f"exec /bin/sh -c {shlex.quote(command)}"]

    def forward_to_host(self, host_port: int) -> int:
        local_port = free_port(20000)
        self._control("forward", "-L", f"127.0.0.1:{local_port}:127.0.0.1:{host_port}")
        return local_port

    def forward_from_host(self, local_port: int) -> int:
        # Port 0: the host's sshd picks a free port on its loopback and says which.
        done = self._control("forward", "-R", f"127.0.0.1:0:127.0.0.1:{local_port}")
        try:
            return int(done.stdout.split()[0])
        except (IndexError, ValueError):
            raise GeneratorError(f"{self.generator.shown}: ssh gave no port for the reverse "
                                 f"forward ({last_line(done.stderr)})") from None

    def _control(self, operation: str, *args: str) -> Done:
        try:
            done = subprocess.run([SSH, *self._options(), "-O", operation, *args, "--",
                                   self.generator.destination], capture_output=True, text=True,
                                  timeout=30, check=False)
        except subprocess.TimeoutExpired:
            raise GeneratorError(f"{self.generator.shown}: ssh did not {operation} "
                                 f"{' '.join(args)} within 30 s") from None
        if done.returncode != 0:
            raise GeneratorError(f"{self.generator.shown}: ssh could not {operation} "
                                 f"{' '.join(args)}: {last_line(done.stderr)}",
                                 "the host's sshd must allow TCP forwarding "
                                 "(AllowTcpForwarding yes)")
        return Done(done.returncode, done.stdout, done.stderr)


def last_line(text: str) -> str:
    """The last non-empty line of what a command printed: its reason, in one line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _login_hint(stderr: str) -> str:
    if "Permission denied" in stderr:
        return "the host refused our key: add yours to its authorized_keys, or load it in " \
               "ssh-agent (ALUMNOS_SSH_CONFIG names an ssh_config to use)"
    if "Host key verification failed" in stderr or "REMOTE HOST IDENTIFICATION" in stderr:
        return "its host key is unknown or changed: check it, then ssh to it once yourself"
    return "check that you can `ssh` to it yourself, without a password prompt"


def quote(*words: str) -> str:
    """Words as one POSIX shell command line."""
    return " ".join(shlex.quote(word) for word in words)
