"""A private PostgreSQL cluster in the state directory, for machines where none answers."""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from alumnos_cli.errors import AlumnosError
from alumnos_cli.stack.cpus import pinned
from alumnos_cli.stack.ports import free_port
from alumnos_cli.stack.state import PostgresRecord

# PostgreSQL refuses to run as root; as root we hand the cluster to this system user.
SERVICE_USER = "postgres"


def pgserver_bin_dir() -> Path | None:
    """The server binaries shipped in the pgserver wheel, when it is installed."""
    # Located, not imported: importing pgserver starts its own machinery and warns.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def find_bin_dir() -> Path:
    """A directory holding initdb and pg_ctl: system binaries first, then the pgserver wheel."""
    candidates: list[Path] = []
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    if wheel := pgserver_bin_dir():
        candidates.append(wheel)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    raise AlumnosError("no PostgreSQL server binaries (initdb, pg_ctl) found",
                       "apt-get install postgresql, or pip install pgserver")


def _as_service_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise AlumnosError("running as root, and there is no 'postgres' user to run PostgreSQL",
                           "useradd --system postgres, or run alumnos as a normal user") from None
    return ["runuser", "-u", SERVICE_USER, "--", *argv]


def _hand_over(path: Path) -> None:
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVICE_USER)
        for item in [path, *path.rglob("*")]:
            os.chown(item, user.pw_uid, user.pw_gid)


def _run(argv: list[str], cpus: tuple[int, ...] | None = None,
         cpuset: Path | None = None) -> None:
    result = subprocess.run(pinned(_as_service_user(argv), cpus, cpuset), capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise AlumnosError(f"{Path(argv[0]).name} failed: {' '.join(detail)}",
                           "see the PostgreSQL log in the state directory")


def cluster_root(state_dir: Path) -> Path:
    """state_dir/postgres, unless the service user could not reach it (a root-only home)."""
    root = (state_dir / "postgres").resolve()
    if os.geteuid() != 0 or all(os.stat(p).st_mode & 0o001 for p in root.parents if p.exists()):
        return root
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"alumnos-postgres-{digest}"


def start_private_cluster(state_dir: Path, bin_dir: Path | None = None,
                          cpus: tuple[int, ...] | None = None,
                          cpuset: Path | None = None) -> PostgresRecord:
    """Create (once) and start a cluster under the state directory on a free local port (on
    `cpus` only when given, with the rest of the stack)."""
    bin_dir = bin_dir or find_bin_dir()
    root = cluster_root(state_dir)
    data_dir, socket_dir, log = root / "data", root / "run", root / "postgres.log"
    socket_dir.mkdir(parents=True, exist_ok=True)
    _hand_over(root)
    if not (data_dir / "PG_VERSION").exists():
        _run([str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres",
              "--auth=trust", "--encoding=UTF8", "--no-instructions"])
    port = free_port(55432)
    options = f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1"
    _run([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(log), "-o", options,
          "-w", "-t", "60", "start"], cpus, cpuset)
    return PostgresRecord(data_dir=str(data_dir), port=port, log=str(log), bin_dir=str(bin_dir),
                          url=f"postgresql://postgres@127.0.0.1:{port}/alumnos")


def stop_private_cluster(record: PostgresRecord) -> None:
    """Stop the private cluster (fast shutdown); its data stays for the next `up`."""
    if not (Path(record.data_dir) / "postmaster.pid").exists():
        return
    _run([str(Path(record.bin_dir) / "pg_ctl"), "-D", record.data_dir, "-m", "fast",
          "-w", "stop"])
