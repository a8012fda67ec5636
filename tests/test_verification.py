"""Wrong answers fail the run: a service that turns wrong once the load begins, loaded by the
real k6 through `alumnos bench`, for each kind of wrong answer.

The fake service answers like the alumnos service (the same envelope, dense ids) until the
target has been verified (by bench, then by k6's setup); from then on its pages of 100 rows
are wrong in one way. k6 must find it during the load, and bench again right after it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from alumnos_cli.bench.request import BenchRequest
from alumnos_cli.bench.run import run_bench
from alumnos_cli.bench.verify import page_problem
from alumnos_cli.files import read_json
from alumnos_cli.report.attribution import Verification
from alumnos_cli.report.read import read_run
from alumnos_cli.report.render.attribution import verification_rows
from alumnos_cli.settings import Settings

TOTAL = 5_000
FIRST_ID = 1
# Pages of 100 rows served right before the fault starts: bench's check, then k6's setup.
RIGHT_PAGES = 2
FAULTS = ("status", "not json", "rows", "offset", "ids", "total")


def row(alumno_id: int) -> dict[str, object]:
    return {"id": alumno_id, "nombre": f"Nombre{alumno_id % 97}", "apellido": "Pérez",
            "email": f"alumno{alumno_id}@alumnos.universidad.edu.ar"}


def page(limit: int, offset: int, fault: str | None) -> tuple[int, str, bytes]:
    """(status, content type, body) of one page, right or wrong in the way asked."""
    first, rows, total = FIRST_ID + offset, max(0, min(limit, TOTAL - offset)), TOTAL
    if fault == "status":
        return 500, "application/problem+json", b'{"status": 500}'
    if fault == "not json":
        return 200, "text/html", b"<html>" + b"x" * 25_000 + b"</html>"
    if fault == "rows":
        rows -= 1
    if fault == "offset":
        first += limit
    if fault == "total":
        total += 1
    items = [row(first + i) for i in range(rows)]
    if fault == "ids" and len(items) > 2:
        items[1] = row(first)  # a duplicate where the second row should be
    body = {"items": items, "limit": limit, "offset": offset, "total": total, "next": None}
    return 200, "application/json", json.dumps(body).encode()


class FakeService:
    """An HTTP server that answers pages of alumnos, wrong from the (RIGHT_PAGES+1)-th page."""

    def __init__(self, fault: str | None) -> None:
        self.fault, self.pages = fault, 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query)
                limit, offset = int(query["limit"][0]), int(query["offset"][0])
                with fake.lock:
                    if limit == 100:
                        fake.pages += 1
                    wrong = fake.fault if limit == 100 and fake.pages > RIGHT_PAGES else None
                status, kind, body = page(limit, offset, wrong)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeService:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    yield Settings.resolve(env={}, results_dir=tmp_path / "results",
                           state_dir=tmp_path / "state")


def _load(settings: Settings, fault: str | None, scenario: str) -> tuple[bool, dict[str, object]]:
    with FakeService(fault) as service:
        result = run_bench(settings, BenchRequest(scenario=scenario, vus=2, duration_seconds=2,
                                                  url=service.url, timeseries=False))
    return result.thresholds_ok, read_json(result.run_dir / "summary.json")


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["pagination", "spike"])
def test_a_right_service_passes(settings: Settings, scenario: str) -> None:
    ok, summary = _load(settings, None, scenario)
    assert ok
    metrics = summary["metrics"]
    assert metrics["verified_answers"]["values"]["count"] >= 2  # each VU's first, at least
    assert metrics["wrong_answers"]["values"]["count"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS)
def test_every_kind_of_wrong_page_fails_the_run(settings: Settings, fault: str) -> None:
    ok, summary = _load(settings, fault, "pagination")
    assert not ok
    metrics = summary["metrics"]
    thresholds = {name: metric.get("thresholds", {}) for name, metric in metrics.items()}
    if fault == "status":
        # Judged on the scenario's own requests (setup()'s left out).
        assert thresholds["http_req_failed{scenario:pagination}"] == {"rate<0.01": {"ok": False}}
    else:  # k6 itself found the wrong pages during the load
        assert metrics["wrong_answers"]["values"]["count"] > 0
        assert thresholds["wrong_answers"] == {"count<1": {"ok": False}}
    # ... and bench again, right after it.
    [run] = list((settings.results_dir).iterdir())
    assert read_run(run).meta.verification.after != "passed"  # type: ignore[union-attr]


@pytest.mark.slow
def test_the_fixed_page_must_keep_its_exact_bytes(settings: Settings) -> None:
    # A wrong total keeps the page's length: only the bytes of a sampled page show it.
    ok, summary = _load(settings, "total", "spike")
    assert not ok
    assert summary["metrics"]["wrong_answers"]["values"]["count"] > 0


@pytest.mark.parametrize("fault", FAULTS[2:])
def test_bench_judges_a_page_as_k6_does(fault: str) -> None:
    status, _, body = page(100, 300, fault)
    assert status == 200
    assert page_problem(json.loads(body), 300, TOTAL, FIRST_ID) is not None
    _, _, right = page(100, 300, None)
    assert page_problem(json.loads(right), 300, TOTAL, FIRST_ID) is None


def test_the_report_says_what_sampling_can_miss() -> None:
    verification = Verification(sample=100, before="passed", after="passed",
                                checked_in_full=2_500, wrong=0)
    # 250,000 requests, 1 in 100 checked in full: a fault in 1 response of 1,000 goes unseen
    # when none of the ~250 faulty ones is among the checked: (1 - 1/100,000)^250,000.
    assert verification.miss_chance(250_000) == pytest.approx(0.0821, abs=0.001)
    rows = dict(verification_rows(verification, 250_000))
    assert rows["what sampling misses"].endswith("probability 8.2%")
    assert Verification(sample=1, before="passed", after="passed").miss_chance(100_000) < 1e-6
