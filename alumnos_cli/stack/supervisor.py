"""supervisord runs the local stack: restarts a replica that dies, stops everything on `down`.

We write its configuration, start it in its own session, and talk to it over XML-RPC on a Unix
socket in the state directory (`supervisorctl -c <state>/supervisord.conf status` works too).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from supervisor.xmlrpc import SupervisorTransport

from alumnos_cli.errors import AlumnosError
from alumnos_cli.stack.config_values import checked_value
from alumnos_cli.stack.cpus import pinned
from alumnos_cli.stack.processes import RecordedProcess, reap, signal_if_same

CONFIG_FILE = "supervisord.conf"
SOCKET_FILE = "supervisor.sock"
# Servers outlive the Popen objects that started them; keeping the objects avoids a
# "subprocess is still running" ResourceWarning when a caller (a test) lives on.
_STARTED: list[subprocess.Popen[bytes]] = []


@dataclass(frozen=True)
class Program:
    """One process supervisord keeps running."""

    name: str
    command: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    # Seconds it must stay up to count as started; a crash before that is a failed start.
    start_seconds: int = 1
    user: str | None = None  # who it runs as (supervisord must then run as root)
    directory: str | None = None  # its working directory


@dataclass(frozen=True)
class ProgramInfo:
    """A program as supervisord reports it."""

    name: str
    state: str  # RUNNING, STARTING, BACKOFF, EXITED, FATAL, STOPPED...
    pid: int
    description: str
    log: str


def socket_dir(state_dir: Path) -> Path:
    """Where the stack's Unix sockets go: the state directory, unless its path is too long.

    A Unix socket path is limited to 107 bytes; deep state directories (pytest's temporary
    folders, say) get a private folder under /tmp named after them instead.
    """
    state_dir = state_dir.resolve()
    short = _short_socket_dir(state_dir)
    if short is None:
        return state_dir
    short.mkdir(mode=0o700, exist_ok=True)
    info = short.lstat()
    if not short.is_dir() or short.is_symlink() or info.st_uid != os.getuid() \
            or info.st_mode & 0o077:
        raise AlumnosError(f"{short} is not a private folder of this user",
                           "remove it, or use a shorter --state-dir")
    return short


def _short_socket_dir(state_dir: Path) -> Path | None:
    """The folder under /tmp named after a state directory too deep for a socket path."""
    if len(str(state_dir / SOCKET_FILE)) <= 100:
        return None
    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"alumnos-{digest}"


def socket_path(state_dir: Path) -> Path:
    """Where supervisord's socket is, without making its folder: asking a stack that is not
    running, or writing a configuration, leaves nothing behind (start_supervisor makes it)."""
    short = _short_socket_dir(state_dir.resolve())
    return (short or state_dir.resolve()) / SOCKET_FILE


def release_socket_dir(state_dir: Path) -> None:
    """After `down`: the /tmp folder a deep state directory got for its socket goes too, once
    nothing but our socket is left in it (a folder that holds anything else is kept)."""
    short = _short_socket_dir(state_dir.resolve())
    if short is None or short.is_symlink() or not short.is_dir():
        return
    (short / SOCKET_FILE).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty: not ours to empty
        short.rmdir()


def _escape(text: str) -> str:
    # supervisord expands %(name)s in its values: a literal % must be doubled.
    return text.replace("%", "%%")


def _check_values(programs: list[Program], paths: list[str]) -> None:
    """Refuse what could end a value early: see config_values; and " ;" or " #", which
    supervisord reads as the start of a comment."""
    words = [*paths, *(arg for p in programs for arg in p.command)]
    for word in words:
        checked_value(word, "a path or argument in supervisord's configuration")
        if " ;" in word or " #" in word:
            raise AlumnosError(f"supervisord cannot take the path {word!r}",
                               "use a --state-dir (and project folder) without ' ;' or ' #'")
    for program in programs:
        checked_value(program.name, "a program name")
        checked_value(program.user or "", "a user name")
        checked_value(program.directory or "", "a working directory")
        for key, value in program.environment.items():
            checked_value(key, "an environment variable name")
            checked_value(value, f"the value of {key}")


def supervisor_config(programs: list[Program], state_dir: Path, log_dir: Path) -> str:
    """The supervisord.conf for these programs: logs per program, restarts, group kills."""
    socket = socket_path(state_dir)
    _check_values(programs, [str(state_dir), str(log_dir), str(socket),
                             *(p.directory for p in programs if p.directory)])
    lines = [
        "[unix_http_server]", f"file={_escape(str(socket))}", "chmod=0700", "",
        "[supervisord]", f"logfile={_escape(str(log_dir / 'supervisord.log'))}",
        f"pidfile={_escape(str(state_dir / 'supervisord.pid'))}",
        f"childlogdir={_escape(str(log_dir))}", "nodaemon=true", "silent=true", "loglevel=info", "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
        "[supervisorctl]", f"serverurl=unix://{_escape(str(socket))}", "",
    ]
    for program in programs:
        env = ",".join(f'{key}="{_escape(value)}"' for key, value in program.environment.items())
        lines += [
            f"[program:{program.name}]",
            f"command={_escape(shlex.join(program.command))}",
            f"startsecs={program.start_seconds}",
            "startretries=5",
            "autorestart=true",
            # Granian forks workers: stop and kill the program's whole process group.
            "stopasgroup=true", "killasgroup=true", "stopwaitsecs=10",
            "redirect_stderr=true",
            f"stdout_logfile={_escape(str(log_dir / f'{program.name}.log'))}",
            "stdout_logfile_maxbytes=10MB", "stdout_logfile_backups=2",
        ]
        if env:
            lines.append(f"environment={env}")
        if program.user:
            lines.append(f"user={program.user}")
        if program.directory:
            lines.append(f"directory={_escape(program.directory)}")
        lines.append("")
    return "\n".join(lines)


def start_supervisor(state_dir: Path, log_dir: Path, programs: list[Program],
                     env: dict[str, str], cpus: tuple[int, ...] | None = None,
                     cpuset: Path | None = None) -> RecordedProcess:
    """Write the configuration and start supervisord in its own session (on `cpus` only when
    given: every program it starts inherits them)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    config = state_dir / CONFIG_FILE
    (socket_dir(state_dir) / SOCKET_FILE).unlink(missing_ok=True)  # its folder made, checked
    config.write_text(supervisor_config(programs, state_dir, log_dir))
    with (log_dir / "supervisord.out").open("ab") as out:
        child = subprocess.Popen(
            pinned([sys.executable, "-m", "supervisor.supervisord", "-c", str(config)], cpus,
                   cpuset),
            env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=state_dir)
    _STARTED.append(child)
    return RecordedProcess.of(child.pid)


def client(state_dir: Path) -> xmlrpc.client.ServerProxy:
    """An XML-RPC proxy to the supervisord of this state directory; use it in a `with`."""
    transport = SupervisorTransport(None, None, f"unix://{socket_path(state_dir)}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def wait_for_supervisor(state_dir: Path, process: RecordedProcess, timeout: float = 15.0) -> None:
    """Block until supervisord answers on its socket."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, xmlrpc.client.Error), client(state_dir) as rpc:
            state = cast(dict[str, Any], rpc.supervisor.getState())
            if state["statename"] == "RUNNING":
                return
        if not process.alive():
            break
        time.sleep(0.1)
    raise AlumnosError("supervisord did not start",
                       f"see {state_dir / 'logs' / 'supervisord.out'}")


def programs_info(state_dir: Path) -> list[ProgramInfo]:
    """Every program's state, or an empty list when supervisord does not answer."""
    try:
        with client(state_dir) as rpc:
            raw = cast(list[dict[str, Any]], rpc.supervisor.getAllProcessInfo())
    except (OSError, xmlrpc.client.Error):
        return []
    return [ProgramInfo(name=item["name"], state=item["statename"], pid=int(item["pid"]),
                        description=item["description"], log=item["stdout_logfile"])
            for item in raw]


def stop_supervisor(state_dir: Path, process: RecordedProcess, timeout: float = 30.0, *,
                    marker: tuple[str, str] | None = None) -> bool:
    """Stop every program, then supervisord; kill leftovers (only those still carrying
    `marker`, the stack's id, when given). True when it was running."""
    leftovers = [RecordedProcess.of(info.pid) for info in programs_info(state_dir) if info.pid]
    if not process.alive():
        _kill_groups(leftovers, marker)
        return False
    with contextlib.suppress(OSError, xmlrpc.client.Error), client(state_dir) as rpc:
        rpc.supervisor.shutdown()
    deadline = time.monotonic() + timeout
    while process.alive() and time.monotonic() < deadline:
        reap(process.pid)
        time.sleep(0.1)
    if process.alive():
        process.stop(timeout=5.0)
    reap(process.pid)
    _kill_groups(leftovers, marker)
    _STARTED[:] = [child for child in _STARTED if child.poll() is None]
    return True


def _kill_groups(leaders: list[RecordedProcess], marker: tuple[str, str] | None) -> None:
    # supervisord puts each program in its own process group; if anything outlived it
    # (supervisord killed hard, a worker ignoring SIGTERM), it goes now. The leaders were read
    # up to 35 s ago: each is signalled only if it is still the same process with our marker.
    for leader in leaders:
        signal_if_same(leader, signal.SIGKILL, group=True, marker=marker)
