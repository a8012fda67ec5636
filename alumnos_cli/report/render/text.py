"""Words every renderer shares: the load, the stack, the server side, Little's law."""

from __future__ import annotations

from collections.abc import Mapping

from alumnos_cli.report.model import (
    LittlesLaw,
    RunMeta,
    RunReport,
    ServerSide,
    ServerSummary,
    StackInfo,
)
from alumnos_cli.report.render.numbers import number, percent

# How each renderer words the load: "table" in the terminal and HTML tables, "list" in
# `report --list`, and the technical report's prose in each language.
LOAD_TEXT = {
    "table": {"closed": "{vus} VUs for {seconds} s (closed model)",
              "open": "open model: {rate} requests/s for {seconds} s, up to {vus} VUs"},
    "list": {"closed": "{vus} VUs, {seconds} s", "open": "{rate}/s, {seconds} s"},
    "es": {"closed": "{vus} usuarios virtuales durante {seconds} s (modelo cerrado)",
           "open": "{rate} peticiones/s durante {seconds} s, hasta {vus} usuarios virtuales "
                   "(modelo abierto)"},
    "en": {"closed": "{vus} virtual users for {seconds} s (closed model)",
           "open": "{rate} requests/s for {seconds} s, up to {vus} virtual users "
                   "(open model)"},
}


def describe_load(meta: RunMeta, style: str = "table") -> str:
    """The load in a phrase: VUs (closed model) or rate (open model), and the duration."""
    words = LOAD_TEXT[style]
    rate = meta.rate or 0.0
    rate_text = number(rate, 0, style) if style in ("es", "en") else f"{rate:g}"
    template = words["open"] if meta.open_model else words["closed"]
    return template.format(vus=meta.vus, seconds=meta.duration_seconds, rate=rate_text)


STACK_TEXT = {
    "en": {"on": "on", "off": "off", "cache": "cache", "workers": "Granian workers",
           "replicas": "replica(s)", "none": "no balancer", "patterns": "patterns",
           "no_patterns": "none"},
    "es": {"on": "activada", "off": "desactivada", "cache": "caché", "workers":
           "workers de Granian", "replicas": "réplica(s)", "none": "sin balanceador",
           "patterns": "patrones", "no_patterns": "ninguno"},
}


def describe_stack(stack: StackInfo, lang: str = "en") -> str:
    """The stack in a line: mode, balancer, replicas, workers, cache, patterns."""
    t = STACK_TEXT[lang]
    cache = f"{t['cache']} {t['on'] if stack.cache else t['off']}"
    if stack.replicas is None:  # recorded before replicas existed: one Granian, no balancer
        return f"{stack.mode}, {stack.workers} {t['workers']}, {cache}"
    front = "HAProxy" if stack.balancer else t["none"]
    text = (f"{stack.mode}, {front}, {stack.replicas} {t['replicas']} x "
            f"{stack.workers} {t['workers']}, {cache}")
    patterns = stack.patterns
    if patterns:
        enabled = [name for name, on in (("retry", patterns.retry),
                                         ("rate limit", patterns.rate_limit),
                                         ("circuit breaker", patterns.circuit_breaker)) if on]
        text += f"; {t['patterns']}: {', '.join(enabled) or t['no_patterns']}"
    return text


SERVER_TEXT = {
    "en": {"replicas": "requests per replica", "cache": "cache hit ratio (at the balancer)",
           "cpu": "service CPU (replicas)", "cpu_value": "{avg} cores average, {max} at most",
           "rss": "service memory (replicas)", "rss_value": "{mib} MiB RSS at most, all "
           "processes", "pg": "PostgreSQL connections", "pg_value": "{n} at most",
           "components": "CPU by component (cores, average)",
           "pg_tx": "PostgreSQL transactions", "redis_hits": "Redis keyspace hits",
           "pg_waits": "PostgreSQL active backends by wait (average; CPU: none)",
           "source": "source", "prometheus": "Prometheus, for the load's window",
           "missing": "not read", "queries": "page queries per request (pg_stat_statements)",
           "queries_value": "{per} ({n} for {requests} requests)",
           "service_counted": "; the service counted {n}",
           "query_ms": "page query time in PostgreSQL (mean)",
           "queries_missing": "queries per request not counted",
           "no_requests": "the load made no request",
           "db_ceiling": "PostgreSQL alone: the page statement (pgbench, {clients} clients, "
           "{seconds} s)", "db_ceiling_value": "{rate} queries/s",
           "db_share": "share of PostgreSQL's ceiling",
           "db_share_value": "{share} ({rate} page queries/s)",
           "db_missing": "PostgreSQL's ceiling not measured"},
    "es": {"replicas": "peticiones por réplica", "cache": "aciertos de caché (en el balanceador)",
           "cpu": "CPU del servicio (réplicas)", "cpu_value": "{avg} núcleos de promedio, {max} "
           "como máximo", "rss": "memoria del servicio (réplicas)", "rss_value": "{mib} MiB "
           "RSS como máximo, todos los procesos", "pg": "conexiones a PostgreSQL",
           "pg_value": "{n} como máximo",
           "components": "CPU por componente (núcleos, promedio)",
           "pg_tx": "transacciones de PostgreSQL", "redis_hits": "aciertos en Redis",
           "pg_waits": "procesos activos de PostgreSQL por espera (media; CPU: ninguna)",
           "source": "fuente", "prometheus": "Prometheus, en la ventana de la carga",
           "missing": "no leído",
           "queries": "consultas de página por petición (pg_stat_statements)",
           "queries_value": "{per} ({n} para {requests} peticiones)",
           "service_counted": "; el servicio contó {n}",
           "query_ms": "tiempo de la consulta de página en PostgreSQL (media)",
           "queries_missing": "consultas por petición sin contar",
           "no_requests": "la carga no hizo ninguna petición",
           "db_ceiling": "PostgreSQL solo: la consulta de página (pgbench, {clients} clientes, "
           "{seconds} s)", "db_ceiling_value": "{rate} consultas/s",
           "db_share": "parte del techo de PostgreSQL",
           "db_share_value": "{share} ({rate} consultas de página/s)",
           "db_missing": "techo de PostgreSQL sin medir"},
}


def server_rows(server: ServerSide, lang: str = "en") -> list[tuple[str, str]]:
    """The server-side summary as (figure, value) rows."""
    t = SERVER_TEXT[lang]
    summary = server.summary
    rows = []
    by_replica = summary.requests_by_replica
    if by_replica:
        total = sum(by_replica.values()) or 1
        rows.append((t["replicas"], ", ".join(
            f"{name} {number(count, 0, lang)} ({percent(count / total, lang, 0)})"
            for name, count in by_replica.items())))
    if summary.cache_hit_ratio is not None:
        rows.append((t["cache"], percent(summary.cache_hit_ratio, lang, 1)))
    rows.append((t["cpu"], t["cpu_value"].format(
        avg=number(summary.service_cores_avg, 2, lang),
        max=number(summary.service_cores_max, 2, lang))))
    rows.append((t["rss"], t["rss_value"].format(
        mib=number(summary.service_rss_mib_max, 0, lang))))
    if summary.pg_connections_max is not None:
        rows.append((t["pg"], t["pg_value"].format(n=summary.pg_connections_max)))
    return rows + _prometheus_rows(summary, t, lang)


def _prometheus_rows(summary: ServerSummary, t: dict[str, str],
                     lang: str) -> list[tuple[str, str]]:
    """What only a run read from Prometheus has."""
    if summary.source != "prometheus":
        return []
    rows = [(t["source"], t["prometheus"])]
    if summary.cores_by_component:
        rows.append((t["components"], ", ".join(
            f"{name} {number(cores, 2, lang)}"
            for name, cores in sorted(summary.cores_by_component.items(),
                                      key=lambda item: -item[1]) if cores >= 0.005)))
    if summary.pg_transactions is not None:
        rows.append((t["pg_tx"], number(summary.pg_transactions, 0, lang)))
    if summary.redis_hits is not None:
        rows.append((t["redis_hits"], number(summary.redis_hits, 0, lang)))
    if summary.pg_waits:
        rows.append((t["pg_waits"], waits_text(summary.pg_waits, lang)))
    return rows


def waits_text(waits: Mapping[str, float], lang: str = "en") -> str:
    """Active backends by what they waited on, most first (kinds that rounded to none left
    out; none at all is said)."""
    shown = [(kind, count) for kind, count in sorted(waits.items(), key=lambda item: -item[1])
             if count >= 0.005]
    return ", ".join(f"{kind} {number(count, 2, lang)}" for kind, count in shown) or \
        number(0, 2, lang)


def server_side_rows(report: RunReport, lang: str = "en") -> list[tuple[str, str]]:
    """The server side's rows, and what could not be read of it; empty when neither."""
    rows = server_rows(report.server, lang) if report.server else []
    rows += queries_rows(report, lang) + database_ceiling_rows(report, lang)
    if report.server_missing:
        rows.append((SERVER_TEXT[lang]["missing"], report.server_missing))
    return rows


def queries_rows(report: RunReport, lang: str = "en") -> list[tuple[str, str]]:
    """Page queries per request as PostgreSQL counted them, beside the service's own count."""
    t, queries = SERVER_TEXT[lang], report.meta.queries
    if queries is None:
        return []
    per = queries.per_request(report.figures.requests)
    if queries.missing or per is None or queries.page_queries is None:
        return [(t["queries_missing"], queries.missing or t["no_requests"])]
    service = report.server.summary.db_queries if report.server else None
    value = t["queries_value"].format(per=number(per, 3, lang),
                                      n=number(queries.page_queries, 0, lang),
                                      requests=number(report.figures.requests, 0, lang))
    if service is not None:
        value += t["service_counted"].format(n=number(service, 0, lang))
    rows = [(t["queries"], value)]
    if queries.mean_ms is not None:
        rows.append((t["query_ms"], f"{number(queries.mean_ms, 3, lang)} ms"))
    return rows


def database_ceiling_rows(report: RunReport, lang: str = "en") -> list[tuple[str, str]]:
    """PostgreSQL's own ceiling for the page statement, and the share of it the run used."""
    t, ceiling = SERVER_TEXT[lang], report.meta.database_ceiling
    if ceiling is None:
        return []
    if ceiling.queries_per_second is None:
        return [(t["db_missing"], ceiling.missing or "")]
    rows = [(t["db_ceiling"].format(clients=ceiling.clients, seconds=ceiling.seconds),
             t["db_ceiling_value"].format(rate=number(ceiling.queries_per_second, 0, lang)))]
    rate = _page_queries_per_second(report)
    share = ceiling.share(rate)
    if share is not None and rate is not None:
        rows.append((t["db_share"], t["db_share_value"].format(
            share=number(share, 2, lang), rate=number(rate, 0, lang))))
    return rows


def _page_queries_per_second(report: RunReport) -> float | None:
    """The run's page statements per second: as PostgreSQL counted them, else as the service
    did (its alumnos_db_queries_total over the window), else unknown."""
    figures, queries = report.figures, report.meta.queries
    per = queries.per_request(figures.requests) if queries else None
    if per is None and report.server is not None and figures.requests:
        counted = report.server.summary.db_queries
        per = counted / figures.requests if counted is not None else None
    return figures.requests_per_second * per if per is not None else None


LITTLE_TEXT = {
    "en": {"figures": "average VUs {vus}; iterations/s x iteration time = {it}; requests/s x "
           "average latency = {req}. ",
           "gap": "The iterations do not account for the VUs: VUs were idle part of the run "
           "(ramps, an early stop, a saturated generator), so the throughput understates what "
           "this load would give. ",
           "outside": "{share} of the VUs' time went outside the requests (k6 checks and "
           "parsing, think time, ramps): the average latency is not VUs / throughput.",
           "waiting": "The VUs spent their time waiting for responses, as they should."},
    "es": {"figures": "VUs promedio {vus}; iteraciones/s x duración de la iteración = {it}; "
           "peticiones/s x latencia promedio = {req}. ",
           "gap": "Las iteraciones no explican los VUs: hubo VUs ociosos parte de la prueba "
           "(rampas, una parada temprana, un generador saturado), así que el throughput se "
           "queda corto frente a lo que esta carga daría. ",
           "outside": "El {share} del tiempo de los VUs transcurrió fuera de las peticiones "
           "(chequeos y lectura de k6, pausas, rampas): la latencia promedio no es VUs / "
           "throughput.",
           "waiting": "Los VUs pasaron su tiempo esperando respuestas, como debe ser."},
}


def littles_law_text(little: LittlesLaw, lang: str = "en") -> str:
    """The check in words, with the gap explained rather than hidden."""
    t = LITTLE_TEXT[lang]
    text = t["figures"].format(vus=number(little.configured, 1, lang),
                               it=number(little.in_iterations, 1, lang),
                               req=number(little.in_requests, 1, lang))
    if not little.consistent:
        text += t["gap"]
    if little.outside_requests > 0.1:
        text += t["outside"].format(share=percent(little.outside_requests, lang, 0))
    else:
        text += t["waiting"]
    return text
