"""Who runs the service side of a local stack, and where its files live.

As root, `up` runs the replicas, HAProxy and the breaker watcher as an unprivileged system user
(`alumnos`, or ALUMNOS_SERVICE_USER): they parse what clients send and what HAProxy logs, and
need no more than their own files. Those files live in a fresh folder made for each `up`
(`/tmp/alumnos-service-XXXX`, 0700, owned by that user): the configurations `up` writes,
HAProxy's runtime socket, the breaker's state and pause files, the fault files. The state
directory (stack.json, supervisord's configuration and socket, the logs) stays the invoking
user's, 0700; supervisord runs as the invoking user and starts each program as the service user.

The service user cannot run an interpreter under /root (pyenv's, here), so as root the programs
run on `.venv-service`: Debian's python3 with the service's locked dependencies, which
`scripts/bootstrap` makes (the same Python as the service container's image).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import alumnos_service
from alumnos_cli.errors import AlumnosError

SERVICE_USER_VARIABLE = "ALUMNOS_SERVICE_USER"
SERVICE_PYTHON_VARIABLE = "ALUMNOS_SERVICE_PYTHON"
DEFAULT_SERVICE_USER = "alumnos"
# The folder that holds the service package: on the programs' PYTHONPATH.
PACKAGES_DIR = Path(alumnos_service.__file__).resolve().parents[1]
SERVICE_RUNTIME = PACKAGES_DIR / ".venv-service" / "bin" / "python"
FOLDER_PREFIX = "alumnos-service-"
# What the programs import: checked as the service user before anything starts.
PROGRAM_IMPORTS = "import granian, flask, sqlalchemy, psycopg2, redis, alumnos_service.app, " \
                  "alumnos_cli.stack.watcher"


@dataclass(frozen=True)
class ServiceSide:
    """Who runs the replicas, HAProxy and the watcher, with which Python, in which folder."""

    user: str | None  # None: the invoking user (not root) runs them
    python: str
    folder: Path


def service_user(env: Mapping[str, str] | None = None) -> str | None:
    """The unprivileged user that runs the service side; None when not running as root."""
    if os.geteuid() != 0:
        return None
    name = (os.environ if env is None else env).get(SERVICE_USER_VARIABLE) or DEFAULT_SERVICE_USER
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise AlumnosError(f"running as root, and there is no user {name!r} to run the "
                           "replicas and HAProxy without root's rights",
                           "bash scripts/system-packages creates it (useradd --system "
                           f"{DEFAULT_SERVICE_USER}), or set {SERVICE_USER_VARIABLE}") from None
    if entry.pw_uid == 0:
        raise AlumnosError(f"{SERVICE_USER_VARIABLE}={name} is root",
                           "name an unprivileged user")
    return name


def service_python(user: str | None, env: Mapping[str, str] | None = None) -> str:
    """The interpreter of the programs: ours, or one the service user can run."""
    chosen = (os.environ if env is None else env).get(SERVICE_PYTHON_VARIABLE)
    if chosen:
        return chosen
    return sys.executable if user is None else str(SERVICE_RUNTIME)


def prepare_service_side(env: Mapping[str, str] | None = None) -> ServiceSide:
    """Make the service side's private folder and check its user can run the programs."""
    user = service_user(env)
    side = ServiceSide(user=user, python=service_python(user, env),
                       folder=Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX)))
    try:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(side.folder, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
            _check_runs(side)
    except BaseException:
        remove_service_folder(side.folder)
        raise
    return side


def service_subfolder(side: ServiceSide, *parts: str) -> Path:
    """A folder inside the service side's, made by us and given to its user (who writes
    there: Prometheus's data, the replicas' metrics, the breaker's textfile)."""
    owner = pwd.getpwnam(side.user) if side.user is not None else None
    folder = side.folder
    for part in parts:
        folder = folder / part
        folder.mkdir(mode=0o700, exist_ok=True)
        if owner is not None:
            os.chown(folder, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
    return folder


def _check_runs(side: ServiceSide) -> None:
    """Import what the programs import, as the service user, writing in its folder."""
    probe = f"{PROGRAM_IMPORTS}; open({str(side.folder / 'probe')!r}, 'w').close()"
    result = subprocess.run(
        ["runuser", "-u", str(side.user), "--", side.python, "-c", probe],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(PACKAGES_DIR),
             "HOME": str(side.folder)},
        capture_output=True, text=True, check=False, cwd=side.folder, timeout=60)
    (side.folder / "probe").unlink(missing_ok=True)
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise AlumnosError(f"the service user {side.user} cannot run the stack's programs with "
                           f"{side.python}: {last[0]}",
                           "as root, run bash scripts/bootstrap (it makes .venv-service), keep "
                           f"the checkout where {side.user} can read it (not under /root), or "
                           f"set {SERVICE_PYTHON_VARIABLE}")


def remove_service_folder(folder: Path) -> None:
    """Remove a service folder `up` made (checked: a real folder of ours, not a link)."""
    try:
        info = folder.lstat()
    except FileNotFoundError:
        return
    made_here = folder.parent == Path(tempfile.gettempdir()) and \
        folder.name.startswith(FOLDER_PREFIX)
    if not made_here or not folder.is_dir() or folder.is_symlink() or info.st_mode & 0o077:
        raise AlumnosError(f"{folder} is not a service folder made by alumnos up; left as is")
    shutil.rmtree(folder)
