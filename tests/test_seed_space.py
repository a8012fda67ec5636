"""A seed the server's disk cannot hold is refused before a row is written, with the space it
needs; a server whose data directory is not on this machine is seeded unchecked."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url

from alumnos_cli.database import row_count
from alumnos_cli.errors import AlumnosError
from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.seed.space import bytes_needed, local_data_directory, table_bytes
from alumnos_cli.settings import Settings
from alumnos_cli.stack.postgres import (
    cluster_root,
    find_bin_dir,
    start_private_cluster,
    stop_private_cluster,
)
from alumnos_cli.stack.state import PostgresRecord
from alumnos_service.db import driver_url
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 96 MiB file system of its own (tmpfs), unmounted and removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mount = Path(tempfile.mkdtemp(prefix="alumnos-small-disk-", dir="/tmp"))
    mount.chmod(0o755)  # the cluster's postgres user must reach its folder inside
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m,mode=0755", "tmpfs", str(mount)],
                   check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)
        shutil.rmtree(mount, ignore_errors=True)


def test_a_seed_larger_than_the_free_disk_is_refused_and_the_table_kept(
        small_disk: Path) -> None:
    state_dir = small_disk / "state"
    try:
        record = start_private_cluster(state_dir)
        settings = Settings.resolve(env={}, database_url=record.url, redis_url=REDIS_URL,
                                    results_dir=small_disk / "results",
                                    state_dir=state_dir)
        seed_alumnos(settings, count=1_000, seed=4)
        with pytest.raises(AlumnosError) as refused:
            seed_alumnos(settings, count=1_000_000, seed=4)
        needed = bytes_needed(999_000, 1_000_000) / 2**30
        assert refused.value.message.startswith(
            f"not enough free disk for 999,000 more alumnos: about {needed:,.1f} GiB needed "
            f"in {small_disk / 'state'}")
        assert "nothing was changed" in (refused.value.hint or "")
        # Refused inside the seed's first transaction: the table and its bookkeeping as before.
        assert row_count(record.url) == 1_000
        seed_alumnos(settings, count=1_000, seed=4)  # still complete: nothing to resume
        engine = create_engine(driver_url(record.url))
        try:
            with engine.connect() as conn:
                assert table_bytes(conn) > 0  # what a --reset would give back
        finally:
            engine.dispose()
    finally:
        # Stopped whatever happened, even a start cut short: it would hold the mount.
        stop_private_cluster(PostgresRecord(
            data_dir=str(cluster_root(state_dir) / "data"), port=0, url="", log="",
            bin_dir=str(find_bin_dir())))


def test_only_a_server_whose_data_is_here_is_checked(database_url: str) -> None:
    engine = create_engine(driver_url(database_url))
    try:
        with engine.connect() as conn:
            here = local_data_directory(conn, database_url)
            assert here is not None and (here / "PG_VERSION").exists()
            # The same server under a port it does not listen on is not the one found there.
            url = make_url(database_url)
            other_port = url.set(port=1).render_as_string(hide_password=False)
            other_host = url.set(host="db.example.internal").render_as_string(
                hide_password=False)
            assert local_data_directory(conn, other_port) is None
            assert local_data_directory(conn, other_host) is None
    finally:
        engine.dispose()
