"""The private PostgreSQL cluster `up` starts when none answers: who may connect, where it lives,
and what it refuses to trust (issue 14, points 5 and 6). Real initdb and pg_ctl throughout."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from alumnos_cli.errors import AlumnosError
from alumnos_cli.stack.postgres import (
    SERVICE_USER,
    cluster_root,
    start_private_cluster,
    stop_private_cluster,
)
from alumnos_cli.stack.state import PostgresRecord

AS_ROOT = os.geteuid() == 0
PASSWORD_FILE = Path("postgres-access") / "password"


@dataclass(frozen=True)
class Cluster:
    """One private cluster shared by the module's tests (initdb costs a few seconds)."""

    state_dir: Path
    root: Path
    record: PostgresRecord
    planted: Path  # where an older alumnos put the cluster, planted with a PG_VERSION

    @property
    def password(self) -> str:
        return (self.state_dir / PASSWORD_FILE).read_text().strip()


def old_predictable_root(state_dir: Path) -> Path:
    """Where alumnos used to put the cluster when run as root: /var/tmp/alumnos-postgres-<sha1>."""
    digest = hashlib.sha1(str((state_dir / "postgres").resolve()).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"alumnos-postgres-{digest}"


def plant_cluster(folder: Path) -> None:
    """A folder that looks like a cluster to a PG_VERSION check, and holds none."""
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "PG_VERSION").write_text("15\n")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state_dir = tmp_path_factory.mktemp("private-cluster") / "state"
    planted = old_predictable_root(state_dir)
    shutil.rmtree(planted, ignore_errors=True)
    plant_cluster(planted)
    root: Path | None = None
    record: PostgresRecord | None = None
    try:
        root = cluster_root(state_dir)
        record = start_private_cluster(state_dir)
        yield Cluster(state_dir, root, record, planted)
    finally:
        if record is not None:
            stop_private_cluster(record)
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(planted, ignore_errors=True)


def connect(*, host: str, port: int, password: str | None = None) -> None:
    """Open and close one connection as the superuser, with no ~/.pgpass to help."""
    conn = psycopg2.connect(host=host, port=port, user="postgres", dbname="postgres",
                            password=password, passfile="/dev/null", connect_timeout=5)
    conn.close()


def test_no_password_no_connection(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    port = cluster.record.port
    with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
        connect(host="127.0.0.1", port=port)
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        connect(host="127.0.0.1", port=port, password="trust-me")
    # The Unix socket asks for the password too (initdb's --auth-local).
    with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
        connect(host=str(cluster.root / "run"), port=port)
    connect(host="127.0.0.1", port=port, password=cluster.password)
    assert cluster.record.url == f"postgresql://postgres:{cluster.password}@127.0.0.1:{port}/alumnos"


def test_the_password_is_in_one_file_only_its_user_can_read(cluster: Cluster) -> None:
    password_file = cluster.state_dir / PASSWORD_FILE
    info = os.lstat(password_file)
    assert stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid()
    assert stat.S_IMODE(info.st_mode) == 0o600
    folder = os.lstat(password_file.parent)
    assert stat.S_IMODE(folder.st_mode) == 0o700 and folder.st_uid == os.geteuid()
    assert len(cluster.password) >= 32
    secret = cluster.password.encode()
    holders = [path for top in (cluster.state_dir, cluster.root)
               for path in _regular_files(top) if secret in path.read_bytes()]
    assert holders == [password_file]


def _regular_files(top: Path) -> Iterator[Path]:
    for folder, _dirs, files in os.walk(top, followlinks=False):
        for name in files:
            path = Path(folder) / name
            if stat.S_ISREG(os.lstat(path).st_mode):
                yield path


@pytest.mark.skipif(not AS_ROOT, reason="as a normal user the cluster lives in the state dir")
def test_as_root_a_fresh_private_folder_not_the_predictable_one(cluster: Cluster) -> None:
    assert cluster.root != cluster.planted
    assert cluster.root.parent == Path("/var/tmp")
    assert cluster.root.name.startswith("alumnos-postgres-")
    info = os.lstat(cluster.root)
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
    assert info.st_uid == pwd.getpwnam(SERVICE_USER).pw_uid
    assert Path(cluster.record.data_dir).parent == cluster.root
    # The planted folder was neither used nor handed to postgres.
    assert os.lstat(cluster.planted / "data" / "PG_VERSION").st_uid == 0
    assert not (cluster.planted / "data" / "postgresql.conf").exists()


@pytest.mark.skipif(not AS_ROOT, reason="only root hands the cluster over to postgres")
def test_a_link_planted_in_the_cluster_folder_is_not_followed(
        cluster: Cluster, tmp_path: Path) -> None:
    target = tmp_path / "root-owned"
    target.write_text("root's\n")
    target_dir = tmp_path / "root-owned-dir"
    target_dir.mkdir()
    (target_dir / "inside").write_text("root's\n")
    stop_private_cluster(cluster.record)
    (cluster.root / "planted-link").symlink_to(target)
    (cluster.root / "planted-dir-link").symlink_to(target_dir)
    again = start_private_cluster(cluster.state_dir)
    for path in (target, target_dir, target_dir / "inside"):
        assert os.lstat(path).st_uid == 0, f"{path} was handed to postgres"
    # The next `up` finds the same cluster and password (its data survives `down`).
    assert Path(again.data_dir).parent == cluster.root
    connect(host="127.0.0.1", port=again.port, password=cluster.password)


def test_a_recorded_folder_that_became_a_link_is_refused(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    root = cluster_root(state_dir)
    # A private folder of the same owner next to it: only the link itself is wrong.
    elsewhere = Path(tempfile.mkdtemp(dir=root.parent))
    try:
        assert cluster_root(state_dir) == root, "the recorded folder is reused"
        os.chown(elsewhere, os.lstat(root).st_uid, os.lstat(root).st_gid)
        root.rmdir()
        root.symlink_to(elsewhere)
        with pytest.raises(AlumnosError, match="not a private folder"):
            cluster_root(state_dir)
    finally:
        if root.is_symlink():
            root.unlink()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(elsewhere, ignore_errors=True)


def test_a_recorded_folder_open_to_others_is_refused(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    root = cluster_root(state_dir)
    try:
        root.chmod(0o755)
        with pytest.raises(AlumnosError, match="not a private folder"):
            cluster_root(state_dir)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_recorded_folder_that_is_gone_is_made_afresh(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    first = cluster_root(state_dir)
    first.rmdir()
    second = cluster_root(state_dir)
    try:
        assert second.is_dir() and cluster_root(state_dir) == second
    finally:
        shutil.rmtree(second, ignore_errors=True)


@pytest.fixture
def open_state_dir() -> Iterator[Path]:
    """A state directory every user can traverse: as root the cluster would live inside it."""
    top = Path(tempfile.mkdtemp(prefix="alumnos-open-"))
    top.chmod(0o755)
    try:
        yield top / "state"
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_a_planted_cluster_in_the_state_dir_is_refused_not_used(open_state_dir: Path) -> None:
    plant_cluster(open_state_dir / "postgres")
    with pytest.raises(AlumnosError, match="alumnos did not make it") as refused:
        start_private_cluster(open_state_dir)
    assert f"rm -rf {open_state_dir / 'postgres'}" in refused.value.hint
    assert os.lstat(open_state_dir / "postgres" / "data" / "PG_VERSION").st_uid == os.geteuid()


def test_a_link_planted_as_the_cluster_folder_is_refused_not_followed(
        open_state_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "root-owned-dir"
    target.mkdir()
    open_state_dir.mkdir()
    (open_state_dir / "postgres").symlink_to(target)
    with pytest.raises(AlumnosError, match="alumnos did not make it"):
        cluster_root(open_state_dir)
    assert os.lstat(target).st_uid == os.geteuid()
    assert list(target.iterdir()) == []
