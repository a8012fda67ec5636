"""A private PostgreSQL cluster for machines where none answers: password (scram-sha-256)
on 127.0.0.1, in a folder only its owner may enter, with the password readable only by the
user who runs alumnos."""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from alumnos_cli.errors import AlumnosError
from alumnos_cli.files import write_text
from alumnos_cli.stack.cpus import pinned
from alumnos_cli.stack.ports import free_port
from alumnos_cli.stack.state import PostgresRecord

# PostgreSQL refuses to run as root; as root we hand the cluster to this system user.
SERVICE_USER = "postgres"
# In the state directory, 0700 and the invoking user's: the superuser's password (0600) and
# where the cluster lives. Only a folder recorded here is trusted to hold our cluster.
ACCESS_DIR = "postgres-access"
PASSWORD_FILE = "password"
ROOT_FILE = "cluster-root"


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


def _service_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise AlumnosError("running as root, and there is no 'postgres' user to run PostgreSQL",
                           "useradd --system postgres, or run alumnos as a normal user") from None


def _server_owner() -> tuple[int, int]:
    """Who runs the server and owns its folder: postgres under root, else the user."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    user = _service_user()
    return user.pw_uid, user.pw_gid


def _as_service_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    _service_user()
    return ["runuser", "-u", SERVICE_USER, "--", *argv]


def _run(argv: list[str], cpus: tuple[int, ...] | None = None,
         cpuset: Path | None = None) -> None:
    result = subprocess.run(pinned(_as_service_user(argv), cpus, cpuset), capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise AlumnosError(f"{Path(argv[0]).name} failed: {' '.join(detail)}",
                           "see postgres.log in the private cluster's folder")


def _check_private(path: Path, uid: int, *, folder: bool) -> None:
    """Refuse anything at path but a real folder (or file) of uid's that no one else may read:
    lstat, so a link planted in its place is refused, never followed."""
    info = os.lstat(path)
    kind = stat.S_ISDIR if folder else stat.S_ISREG
    if not kind(info.st_mode) or info.st_uid != uid or info.st_mode & 0o077:
        owner = "postgres's" if uid != os.geteuid() else "yours"
        raise AlumnosError(f"{path} is not a private {'folder' if folder else 'file'} of "
                           f"{owner} (a link, another owner, or open to others)",
                           f"if alumnos made it, remove it (rm -rf {path}) and run `alumnos "
                           f"up` again; the private cluster starts empty")


def _own(path: Path, uid: int, gid: int) -> None:
    """Make a folder we just created 0700 and uid's, through the folder itself (O_NOFOLLOW):
    never through a name that could since have become a link to someone else's file."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchmod(fd, 0o700)
        os.fchown(fd, uid, gid)
    finally:
        os.close(fd)


def _access_dir(state_dir: Path) -> Path:
    """The state directory's private folder for the cluster's password and location."""
    path = state_dir / ACCESS_DIR
    state_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    _check_private(path, os.geteuid(), folder=True)
    return path


def _reachable_by_all(folder: Path) -> bool:
    return all(os.stat(p).st_mode & 0o001 for p in [folder, *folder.parents] if p.exists())


def _make_root(state_dir: Path) -> Path:
    """A fresh folder for the cluster: state_dir/postgres, or, when root and the postgres user
    could not reach the state directory, an unguessable one in /var/tmp (mkdtemp)."""
    owner, parent = _server_owner(), state_dir.resolve()
    if os.geteuid() == 0 and not _reachable_by_all(parent):
        root = Path(tempfile.mkdtemp(prefix="alumnos-postgres-", dir="/var/tmp"))
    else:
        root = parent / "postgres"
        try:
            os.mkdir(root, 0o700)
        except FileExistsError:
            raise AlumnosError(
                f"{root} exists, but alumnos did not make it: an older alumnos's cluster (open "
                f"to every local user: trust authentication), or someone else's",
                f"remove it (rm -rf {root}) and run `alumnos up` again; the new cluster has a "
                f"password, and starts empty (seed it again)") from None
    _own(root, *owner)
    return root


def _recorded_root(access: Path) -> Path | None:
    """The folder recorded by an earlier `up`, checked; None when there is none (any more)."""
    try:
        root = Path((access / ROOT_FILE).read_text().strip())
        _check_private(root, _server_owner()[0], folder=True)
    except FileNotFoundError:
        return None
    return root


def cluster_root(state_dir: Path) -> Path:
    """The private cluster's folder: the one recorded in the state directory, or a fresh one,
    made and recorded now (so that the next `up` finds the same cluster)."""
    access = _access_dir(state_dir)
    root = _recorded_root(access)
    if root is None:
        root = _make_root(state_dir)
        write_text(access / ROOT_FILE, f"{root}\n", mode=0o600)
    return root


def _write_pwfile(path: Path, password: str) -> None:
    """initdb's --pwfile: new (O_EXCL, O_NOFOLLOW), 0600, the server owner's."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchown(out.fileno(), *_server_owner())
        out.write(f"{password}\n")


def _initdb(bin_dir: Path, root: Path, access: Path) -> None:
    """A new cluster whose every connection, on TCP or the socket, needs the password."""
    password = secrets.token_urlsafe(32)
    write_text(access / PASSWORD_FILE, f"{password}\n", mode=0o600)
    pwfile = root / "initdb.pw"
    _write_pwfile(pwfile, password)
    try:
        _run([str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", "postgres",
              f"--pwfile={pwfile}", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
              "--encoding=UTF8", "--no-instructions"])
    finally:
        pwfile.unlink(missing_ok=True)


def _password(access: Path, root: Path) -> str:
    path = access / PASSWORD_FILE
    try:
        _check_private(path, os.geteuid(), folder=False)
    except FileNotFoundError:
        raise AlumnosError(f"the private cluster in {root} has no recorded password ({path})",
                           f"remove it (rm -rf {root}) and run `alumnos up` again; the new "
                           f"cluster starts empty") from None
    return path.read_text().strip()


def _socket_dir(root: Path) -> Path:
    """The server's socket folder, 0700: only its owner (and root) connect through it."""
    path = root / "run"
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
        _own(path, *_server_owner())
    return path


def start_private_cluster(state_dir: Path, bin_dir: Path | None = None,
                          cpus: tuple[int, ...] | None = None,
                          cpuset: Path | None = None) -> PostgresRecord:
    """Create (once) and start the private cluster on a free local port (on `cpus` only when
    given, with the rest of the stack); its URL carries the recorded password."""
    bin_dir = bin_dir or find_bin_dir()
    access, root = _access_dir(state_dir), cluster_root(state_dir)
    data_dir, socket_dir, log = root / "data", _socket_dir(root), root / "postgres.log"
    # Trusted only because the folder is recorded and its owner's alone (checked above).
    if not (data_dir / "PG_VERSION").exists():
        _initdb(bin_dir, root, access)
    password = _password(access, root)
    port = free_port(55432)
    options = (f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 "
               "-c unix_socket_permissions=0700" + _statement_statistics(bin_dir))
    _run([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(log), "-o", options,
          "-w", "-t", "60", "start"], cpus, cpuset)
    return PostgresRecord(data_dir=str(data_dir), port=port, log=str(log), bin_dir=str(bin_dir),
                          url=f"postgresql://postgres:{password}@127.0.0.1:{port}/alumnos")


def _statement_statistics(bin_dir: Path) -> str:
    """Load pg_stat_statements where the server has it, so bench can count the page queries
    each request cost (bench/queries.py)."""
    found = subprocess.run([str(bin_dir / "pg_config"), "--pkglibdir"], capture_output=True,
                           text=True, check=False) if (bin_dir / "pg_config").exists() else None
    library = Path(found.stdout.strip()) if found and found.returncode == 0 \
        else bin_dir.parent / "lib"
    if not (library / "pg_stat_statements.so").exists():
        return ""
    return " -c shared_preload_libraries=pg_stat_statements"


def stop_private_cluster(record: PostgresRecord) -> None:
    """Stop the private cluster (fast shutdown); its data stays for the next `up`."""
    if not (Path(record.data_dir) / "postmaster.pid").exists():
        return
    _run([str(Path(record.bin_dir) / "pg_ctl"), "-D", record.data_dir, "-m", "fast",
          "-w", "stop"])
