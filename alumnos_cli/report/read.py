"""Reading a run folder, once, into a typed report.

`read_record` gives what listing and comparing need (metadata and figures); `read_run` adds
the checks, the time series, the server side and the proof made on the same stack. Every file
is read here and nowhere else; a missing or corrupt one gives one error naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from alumnos_cli.errors import RunFolderError
from alumnos_cli.files import read_json
from alumnos_cli.report import legacy
from alumnos_cli.report.attribution import (
    Costs,
    CrossCheck,
    DatabaseCeiling,
    PageQueries,
    Placement,
    Verification,
)
from alumnos_cli.report.balancer import BalancerActivity, BreakerEvent
from alumnos_cli.report.breakdown import missing_line, parse_breakdown
from alumnos_cli.report.checks import generator_verdict, littles_law
from alumnos_cli.report.compare import Side
from alumnos_cli.report.generators import parse_hosts
from alumnos_cli.report.model import (
    GeneratorUsage,
    ListedRun,
    LoadShape,
    Machine,
    PatternsInUse,
    Proof,
    ProofVerdict,
    Repeat,
    RunMeta,
    RunRecord,
    RunReport,
    ServerSample,
    ServerSide,
    ServerSummary,
    StackInfo,
)
from alumnos_cli.report.summary import summary_figures
from alumnos_cli.report.timeseries import run_timeseries
from alumnos_cli.runfolder import (
    BREAKDOWN_FILE,
    K6_LOG_FILE,
    META_FILE,
    PROOFS_DIR,
    SERVER_FILE,
    SUMMARY_FILE,
    list_runs,
    proof_files,
    resolve_run,
)
from alumnos_cli.settings import mask_document


def read_record(path: Path) -> RunRecord:
    """A finished run's metadata and figures; a run that failed or never finished is refused.

    Passwords are masked here, once for every format: runs recorded before alumnos masked
    them (a --url or --database-url with a password in meta.json) never show one.
    """
    raw = mask_document(read_json(path / META_FILE))
    status = raw.get("status")
    if status != "finished":
        raise RunFolderError(f"run {path.name} has status {status!r}, not 'finished'",
                             f"see {path / K6_LOG_FILE}; run alumnos bench again")
    meta = parse_meta(raw, str(path / META_FILE))
    summary = path / SUMMARY_FILE
    summary_document = read_json(summary)
    if meta.verification is not None:
        meta = replace(meta, verification=replace(
            meta.verification, checked_in_full=_count(summary_document, "verified_answers"),
            wrong=_count(summary_document, "wrong_answers")))
    ceiling = None
    if meta.calibration_path is not None:
        calibration = _inside(path, str(raw["calibration"].get("folder")), path / META_FILE)
        ceiling_file = calibration / SUMMARY_FILE
        ceiling = summary_figures(read_json(ceiling_file), str(ceiling_file))
    return RunRecord(folder=path, meta=meta,
                     figures=summary_figures(summary_document, str(summary)),
                     ceiling=ceiling, recorded_meta=raw)


def _count(summary: Mapping[str, Any], metric: str) -> int:
    """A counter of k6's summary; 0 when it never counted (k6 leaves such metrics out)."""
    values = (summary.get("metrics", {}).get(metric) or {}).get("values") or {}
    return int(values.get("count", 0))


def read_run(path: Path) -> RunReport:
    """Everything the renderers show about one run."""
    record = read_record(path)
    return RunReport(
        record=record,
        little=littles_law(record.figures, record.meta),
        generator=generator_verdict(record.meta),
        timeseries=run_timeseries(path),
        server=read_server(path / SERVER_FILE),
        proof=proof_for(path.parent, record.meta.stack),
        server_missing=_server_missing(record.recorded_meta),
        **_breakdown(path, record.recorded_meta),
    )


def _breakdown(path: Path, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The run's breakdown, or the line that says why it has none."""
    file = path / BREAKDOWN_FILE
    if not file.exists():
        return {"breakdown": None, "breakdown_missing": missing_line(meta)}
    return {"breakdown": parse_breakdown(read_json(file), str(file)), "breakdown_missing": None}


def _server_missing(meta: Mapping[str, Any]) -> str | None:
    """What `bench` could not read of the server side (meta.json's server_side.missing), and
    whether k6's copy could not go into Prometheus (prometheus.missing)."""
    lines = []
    for part in ("server_side", "prometheus"):
        section = meta.get(part)
        missing = section.get("missing") if isinstance(section, dict) else None
        if missing:
            lines.append(str(missing))
    return "; ".join(lines) or None


def _inside(folder: Path, name: str, source: Path) -> Path:
    """A path a run file names, refused unless it stays inside the run folder."""
    target = (folder / name).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise RunFolderError(f"{source} names {name!r}, outside its run folder")
    return target


# --- meta.json --------------------------------------------------------------------------


def parse_meta(raw: Mapping[str, Any], source: str) -> RunMeta:
    """The typed metadata; fields old runs lack come from report.legacy."""
    try:
        return _meta(raw)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise RunFolderError(f"{source} does not hold run metadata as alumnos writes it "
                             f"({type(exc).__name__}: {exc})",
                             "restore it from a backup, or run alumnos bench again") from None


def _meta(raw: Mapping[str, Any]) -> RunMeta:
    scenario = str(raw["scenario"])
    definition: Mapping[str, Any] = raw.get("scenario_definition") or {}
    path = _optional_str(raw.get("path"))
    stages = (definition["stages"] if "stages" in definition else legacy.stages(scenario))
    machine = raw.get("machine") or {}
    calibration = raw.get("calibration") or {}
    return RunMeta(
        scenario=scenario,
        script=str(raw.get("script")),
        model=str(raw.get("model") or legacy.MODEL),
        vus=int(raw["vus"]),
        rate=None if raw.get("rate") is None else float(raw["rate"]),
        duration_seconds=int(raw["duration_seconds"]),
        url=str(raw.get("url")),
        command=str(raw.get("command")),
        started_at=str(raw.get("started_at")),
        rows=None if raw.get("rows") is None else int(raw["rows"]),
        requests=str(definition.get("request_path") or legacy.request_path(scenario, path)),
        load_shape=LoadShape(tuple((float(share), float(level)) for share, level in stages)),
        machine=Machine(cpu_count=_optional_int(machine.get("cpu_count")),
                        cpu_model=_optional_str(machine.get("cpu_model"))),
        versions={str(k): str(v) for k, v in (raw.get("versions") or {}).items()},
        path=path,
        stack=_stack(raw.get("stack")),
        repeat=_repeat(raw.get("repeat")),
        generator=_generator(raw.get("load_generator")),
        calibration_path=_optional_str(calibration.get("path")) if calibration else None,
        verification=_verification(raw.get("verification")),
        costs=_costs(raw.get("costs")),
        cross_check=CrossCheck(**raw["cross_check"]) if raw.get("cross_check") else None,
        placement=_placement(raw.get("placement")),
        balancer=_balancer(raw.get("balancer")),
        queries=PageQueries.from_meta(raw.get("queries")),
        database_ceiling=DatabaseCeiling.from_meta(calibration.get("database")),
    )


def _verification(raw: Mapping[str, Any] | None) -> Verification | None:
    if not raw:
        return None
    return Verification(sample=int(raw["sample"]), before=str(raw["before"]),
                        after=str(raw["after"]))


def _costs(raw: Mapping[str, Any] | None) -> Costs | None:
    if not raw:
        return None
    return Costs(requests=int(raw["requests"]),
                 cpu_seconds={str(k): float(v) for k, v in raw["cpu_seconds"].items()},
                 stack_measured=bool(raw.get("stack_measured")),
                 shared=tuple(str(name) for name in raw.get("shared") or ()))


def _balancer(raw: Mapping[str, Any] | None) -> BalancerActivity | None:
    if not raw:
        return None
    events = tuple(BreakerEvent(offset_s=float(e["offset_s"]), replica=str(e["replica"]),
                                state=str(e["state"]), why=str(e["why"]),
                                median_ms=_optional_float(e.get("median_ms")),
                                peers_ms=_optional_float(e.get("peers_ms")),
                                failed_share=_optional_float(e.get("failed_share")))
                   for e in raw.get("events") or ())
    seconds = raw.get("load_seconds")
    return BalancerActivity(
        breaker_enabled=bool(raw.get("breaker_enabled")), responses=int(raw["responses"]),
        refused={str(k): int(v) for k, v in (raw.get("refused") or {}).items()},
        events=events, load_seconds=None if seconds is None else float(seconds))


def _placement(raw: Mapping[str, Any] | None) -> Placement | None:
    if not raw:
        return None
    generator, stack = raw.get("generator") or {}, raw.get("stack") or {}
    return Placement(
        generator_cpus=tuple(generator["cpus"]) if generator.get("cpus") else None,
        stack_cpus=tuple(stack["cpus"]) if stack.get("cpus") else None,
        cpuset=_optional_str(stack.get("cpuset")),
        not_pinned=tuple(str(item) for item in raw.get("not_pinned") or ()))


def _stack(raw: Mapping[str, Any] | None) -> StackInfo | None:
    if not raw:
        return None
    patterns = raw.get("patterns")
    return StackInfo(
        mode=str(raw.get("mode")), workers=_optional_int(raw.get("workers")),
        cache=bool(raw.get("cache")),
        replicas=_optional_int(raw.get("replicas")),
        balancer=_optional_str(raw.get("balancer")),
        patterns=PatternsInUse(retry=bool(patterns.get("retry")),
                               rate_limit=bool(patterns.get("rate_limit")),
                               circuit_breaker=bool(patterns.get("circuit_breaker")))
        if patterns else None,
        stack_id=_optional_str(raw.get("stack_id")))


def _repeat(raw: Mapping[str, Any] | None) -> Repeat | None:
    if not raw:
        return None
    return Repeat(group=_optional_str(raw.get("group")), index=int(raw["index"]),
                  of=int(raw["of"]))


def _generator(raw: Mapping[str, Any] | None) -> GeneratorUsage | None:
    if not raw:
        return None
    return GeneratorUsage(k6_cores=float(raw.get("k6_cores", 0)),
                          cpu_count=int(raw.get("cpu_count", 1)),
                          machine_busy=float(raw.get("machine_busy", 0)),
                          hosts=parse_hosts(raw.get("generators")),
                          percentiles=_optional_str(raw.get("percentiles")))


def _optional_int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, int | float | str):
        return int(value)
    raise TypeError(f"not a number: {value!r}")


def _optional_float(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError(f"not a number: {value!r}")


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


# --- server.json ------------------------------------------------------------------------


def read_server(path: Path) -> ServerSide | None:
    """The run's server-side figures, None when none were recorded (another target)."""
    if not path.exists():
        return None
    document = read_json(path)
    summary = document.get("summary")
    samples = document.get("samples", [])
    if not (_is_server_summary(summary) and isinstance(samples, list)):
        raise RunFolderError(f"{path} does not hold server-side figures as alumnos writes them",
                             "delete it to report the run without them")
    assert isinstance(summary, dict)
    try:
        return ServerSide(summary=ServerSummary(**summary),
                          samples=tuple(ServerSample(**sample) for sample in samples))
    except TypeError as exc:
        raise RunFolderError(f"{path} does not hold server-side figures as alumnos writes them "
                             f"({exc})", "delete it to report the run without them") from None


def _is_server_summary(summary: object) -> bool:
    if not isinstance(summary, dict):
        return False
    counts = ("requests_by_replica", "cache_outcomes")
    averages = ("cores_by_component", "pg_waits")  # by component, by wait kind
    if not isinstance(summary.get("source", ""), str) or not all(
            isinstance(summary.get(key, {}), dict)
            and all(isinstance(v, int | float) for v in summary.get(key, {}).values())
            for key in averages):
        return False
    numbers_ok = all(isinstance(value, int | float) or value is None
                     for key, value in summary.items()
                     if key not in (*counts, *averages, "source"))
    counts_ok = all(isinstance(summary.get(key, {}), dict)
                    and all(isinstance(v, int) for v in summary.get(key, {}).values())
                    for key in counts)
    return numbers_ok and counts_ok


# --- the proof of the same stack --------------------------------------------------------


def proof_for(results_dir: Path, stack: StackInfo | None) -> Proof | None:
    """The newest `alumnos patterns` proof made on the stack that served the run.

    A proof speaks for the stack it ran on (same `alumnos up`); a run against any other
    target, or recorded before runs named their stack, has none.
    """
    if stack is None or stack.stack_id is None:
        return None
    for path in reversed(proof_files(results_dir)):
        document = read_json(path)
        if document.get("stack_id") == stack.stack_id:
            return _proof(mask_document(document), path)
    return None


def _proof(document: Mapping[str, Any], path: Path) -> Proof:
    results = document.get("results")
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise RunFolderError(f"{path} does not hold proof results as alumnos writes them",
                             f"delete it, or run alumnos patterns again ({PROOFS_DIR}/)")
    return Proof(started_at=str(document.get("started_at")),
                 results=tuple(ProofVerdict(str(r.get("pattern")), str(r.get("observed")),
                                            str(r.get("verdict"))) for r in results),
                 document=document)


def list_records(results_dir: Path) -> list[ListedRun]:
    """Every stored run, oldest first, each read or with the reason it cannot be."""
    listed = []
    for path in list_runs(results_dir):
        try:
            listed.append(ListedRun(path.name, read_record(path)))
        except RunFolderError as exc:
            listed.append(ListedRun(path.name, None, exc.message))
    return listed


# --- comparison sides -------------------------------------------------------------------


def load_sides(results_dir: Path, baseline: str, candidate: str) -> tuple[Side, Side]:
    """Both sides; runs of one --repeat group are compared one against the other."""
    a = read_record(resolve_run(results_dir, baseline))
    b = read_record(resolve_run(results_dir, candidate))
    one_group = a.meta.group is not None and a.meta.group == b.meta.group
    if one_group or a.folder.resolve() == b.folder.resolve():
        return Side(a.name, (a,)), Side(b.name, (b,))
    return _widened(a), _widened(b)


def _widened(run: RunRecord) -> Side:
    """A run, widened to its --repeat group when it has one."""
    group = run.meta.group
    if not group:
        return Side(run.name, (run,))
    members = tuple(other for other in _readable_runs(run.folder.parent)
                    if other.meta.group == group)
    runs = members or (run,)
    label = f"{group} ({len(runs)} runs)" if len(runs) > 1 else run.name
    return Side(label, runs)


def _readable_runs(results_dir: Path) -> list[RunRecord]:
    """Every run of the folder that reads (unfinished or corrupt ones cannot be compared)."""
    return [listed.record for listed in list_records(results_dir) if listed.record is not None]
