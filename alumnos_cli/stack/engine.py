"""The Docker engine and the compose CLI that compose mode drives.

The engine is the one DOCKER_HOST names (or the default socket); the SDK reads it (status,
logs, images), the CLI orchestrates (build, up, down), as the SDK has no compose support. Both
compose CLIs work: the v2 plugin (`docker compose`) where it exists, else the v1 program
(`docker-compose`, Debian 12's); the commands we give them are the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import docker
from docker.errors import DockerException
from requests.exceptions import RequestException

from alumnos_cli.errors import AlumnosError

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
V2 = ("docker", "compose")
V1 = ("docker-compose",)


class DockerClient(Protocol):
    """The part of docker.DockerClient compose mode uses."""

    def ping(self) -> bool: ...

    def close(self) -> None: ...

    @property
    def containers(self) -> Any: ...

    @property
    def images(self) -> Any: ...


class EngineUnreachable(AlumnosError):
    """No Docker engine answers where DOCKER_HOST (or the default socket) points."""


def docker_host(env: Mapping[str, str] | None = None) -> str:
    """The engine's address: DOCKER_HOST, else the default socket."""
    return (os.environ if env is None else env).get("DOCKER_HOST") or DEFAULT_SOCKET


def socket_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The engine's Unix socket on this machine (what Traefik mounts), None over TCP."""
    host = docker_host(env)
    return Path(host.removeprefix("unix://")) if host.startswith("unix://") else None


def _unreachable(host: str, why: str) -> EngineUnreachable:
    return EngineUnreachable(
        f"no Docker engine answers at {host} ({why})",
        "start one (as root: dockerd --iptables=false &), or point DOCKER_HOST at its socket; "
        "local mode needs none: alumnos up --mode local")


def connect(host: str | None = None) -> DockerClient:
    """A client to the engine at `host` (DOCKER_HOST when None; close it when done), or
    EngineUnreachable saying how to reach one."""
    host = host or docker_host()
    path = socket_path({"DOCKER_HOST": host})
    if path is not None and not path.exists():
        # Checked first: the SDK would negotiate over a socket it then never closes.
        raise _unreachable(host, "no such socket")
    client: DockerClient | None = None
    try:
        client = docker.DockerClient(base_url=host, version="auto", timeout=10)
        client.ping()
    except (DockerException, RequestException, OSError) as exc:
        if client is not None:
            client.close()
        why = "permission denied: add yourself to the docker group, or use sudo" \
            if "ermission denied" in str(exc) else type(exc).__name__
        raise _unreachable(host, why) from None
    return client


def compose_cli(runner: Any = subprocess.run) -> tuple[str, ...]:
    """The compose CLI here: the v2 plugin if `docker compose` answers, else v1."""
    if shutil.which("docker"):
        probe = runner([*V2, "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return V2
    if shutil.which("docker-compose"):
        return V1
    raise AlumnosError("no compose CLI: neither `docker compose` nor `docker-compose` runs",
                       "install Docker's compose plugin, or Debian's docker-compose "
                       "(bash scripts/system-packages does)")


def compose_argv(cli: tuple[str, ...], project: str, files: list[str], *args: str) -> list[str]:
    """A compose command line for our project and files; the same for v1 and v2."""
    argv = [*cli, "--project-name", project]
    for file in files:
        argv += ["--file", file]
    return [*argv, *args]
