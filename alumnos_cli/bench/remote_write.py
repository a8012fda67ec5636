"""k6 writing its metrics into Prometheus as it runs (k6's experimental-prometheus-rw output).

Each run's samples carry a `run_id` label, the run folder's name, so a query selects one run:
`histogram_quantile(0.95, sum(k6_http_req_duration_seconds{run_id="..."}))`. The run folder
keeps its own summary and time series; Prometheus is a second copy, for live dashboards and
for queries across runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from alumnos_cli.errors import InvalidOption
from alumnos_cli.runfolder import CALIBRATION_DIR, K6_LOG_FILE
from alumnos_cli.settings import mask_password
from alumnos_cli.stack.http import http_get
from alumnos_cli.stack.prometheus_args import WRITE_FLAGS, WRITE_PATH

RUN_LABEL = "run_id"
# As often as the run folder's time series (k6.RECORDING_PERIOD), so a dashboard and the
# report show the same seconds; k6's default is 5 s. Cost: benchmarks/remote_write_cost.py.
PUSH_INTERVAL = "1s"
# What k6 logs, at error level, for each push that did not arrive; it goes on running (and
# exits 0), so the log is the only place that says the copy in Prometheus has gaps.
_FAILED_PUSH = "Failed to send the time series data"


def write_url(prometheus_url: str) -> str:
    """Where k6 pushes: the Prometheus base URL's remote-write endpoint (a URL that already
    ends with it is taken as it is)."""
    base = prometheus_url.rstrip("/")
    return base if base.endswith(WRITE_PATH) else f"{base}{WRITE_PATH}"


def base_url(prometheus_url: str) -> str:
    """The Prometheus base URL, for its API, from either form the user may give."""
    base = prometheus_url.rstrip("/")
    return base.removesuffix(WRITE_PATH)


OFF = "off"  # --prometheus off: no remote write, even into the stack's own Prometheus


def validate_url(prometheus_url: str) -> None:
    """Refuse a Prometheus URL that is not http(s) (or `off`)."""
    if prometheus_url != OFF and not re.match(r"https?://", prometheus_url):
        raise InvalidOption("--prometheus", "--prometheus must start with http:// or "
                            f"https://, got {mask_password(prometheus_url)!r}")


def chosen_prometheus(given: str | None, stack_prometheus: str | None) -> str | None:
    """Where k6 writes: --prometheus, else the Prometheus of the stack `up` started (remote
    write costs k6 about 1% CPU per request, measured by benchmarks/remote_write_cost.py, within
    the 3% that lets it be on by default); `off` writes nowhere."""
    if given == OFF:
        return None
    return given or stack_prometheus


def run_id(folder: Path) -> str:
    """The label value of a run's samples: its folder's name; a calibration inside it gets
    "<run>/calibration", so that the two loads are never summed together."""
    if folder.name == CALIBRATION_DIR:
        return f"{folder.parent.name}/{CALIBRATION_DIR}"
    return folder.name


def remote_write_env(prometheus_url: str) -> dict[str, str]:
    """Environment of k6's Prometheus output: where, how often, trends as native histograms
    (exact counts in exponential buckets, instead of a few precomputed percentiles that can
    never be summed across series or runs)."""
    return {"K6_PROMETHEUS_RW_SERVER_URL": write_url(prometheus_url),
            "K6_PROMETHEUS_RW_PUSH_INTERVAL": PUSH_INTERVAL,
            "K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM": "true"}


def remote_write_args(folder: Path) -> tuple[str, ...]:
    """k6 run's arguments for the output, every sample tagged with the run's id."""
    return ("--out", "experimental-prometheus-rw", "--tag", f"{RUN_LABEL}={run_id(folder)}")


def check_prometheus(prometheus_url: str) -> str | None:
    """Before any load: why k6 cannot write into this Prometheus (it does not answer, or
    lacks the remote-write receiver or native histograms, and would lose every sample or every
    trend silently), or None when it can. The run goes on without the copy: one line says so."""
    base = base_url(prometheus_url)
    shown = mask_password(base)
    answer = http_get(f"{base}/api/v1/status/flags", timeout=3.0)
    if answer is None:
        return f"Prometheus does not answer at {shown}: k6 wrote nowhere"
    status, body = answer
    if status != 200:
        return None  # not a Prometheus that shows its flags (a proxy, a receiver): k6's log says
    try:
        flags = json.loads(body)["data"]
    except (ValueError, KeyError, TypeError):
        return None
    features = str(flags.get("enable-feature", "")).split(",")
    if flags.get("web.enable-remote-write-receiver") != "true" \
            or "native-histograms" not in features:
        return (f"Prometheus at {shown} does not take k6's writes (it needs "
                f"{' '.join(WRITE_FLAGS)}): k6 wrote nowhere")
    return None


def remote_write_record(prometheus_url: str | None, run_dir: Path) -> dict[str, Any] | None:
    """What meta.json says of the copy in Prometheus: where k6 wrote, under which run_id, and
    how many pushes failed (from k6's logs); None when k6 wrote nowhere."""
    if prometheus_url is None:
        return None
    logs = [run_dir / K6_LOG_FILE, run_dir / CALIBRATION_DIR / K6_LOG_FILE]
    failed = sum(_failed_pushes(log) for log in logs if log.exists())
    record: dict[str, Any] = {
        "write_url": mask_password(write_url(prometheus_url)),
        "label": RUN_LABEL, RUN_LABEL: run_id(run_dir),
        "push_interval": PUSH_INTERVAL, "trends": "native histograms",
        "failed_pushes": failed}
    if (run_dir / CALIBRATION_DIR).is_dir():
        record["calibration_run_id"] = run_id(run_dir / CALIBRATION_DIR)
    return record


def _failed_pushes(log: Path) -> int:
    with log.open(encoding="utf-8", errors="replace") as lines:
        return sum(_FAILED_PUSH in line for line in lines)
