"""The technical-report section of a run in Markdown, in Spanish (default) or English.

The structure follows the reference report ("Prueba de carga ...", Configuración, Resultados,
Conclusión); every sentence of the conclusion is derived from the figures and thresholds.
"""

from __future__ import annotations

from typing import Any

from alumnos_cli.render.numbers import number, percent
from alumnos_cli.render.terminal import describe_stack, server_rows
from alumnos_cli.results import GeneratorVerdict, LittlesLaw, RunFigures

TEXT = {
    "es": {
        "title": "Prueba de carga: escenario {scenario}",
        "configuration": "Configuración", "results": "Resultados",
        "thresholds": "Umbrales", "conclusion": "Conclusión",
        "server": "Lado del servidor", "patterns": "Patrones de resiliencia (alumnos "
        "patterns)", "pattern": "Patrón", "observed": "Observado",
        "endpoint": "Endpoint", "load_closed": "{vus} usuarios virtuales durante {seconds} s "
        "(modelo cerrado)",
        "load_open": "{rate} peticiones/s durante {seconds} s, hasta {vus} usuarios virtuales "
        "(modelo abierto)",
        "load": "Carga", "rows": "Filas en la tabla", "stack": "Pila", "machine": "Máquina",
        "tool": "Herramienta", "date": "Fecha", "command": "Comando",
        "metric": "Métrica", "value": "Valor", "threshold": "Umbral", "verdict": "Resultado",
        "pass": "cumplido", "fail": "NO cumplido",
        "requests": "Total de peticiones", "share_200": "Respuestas 200",
        "errors": "Tasa de error", "throughput": "Throughput", "avg": "Latencia promedio",
        "p50": "Latencia p50", "p90": "Latencia p90", "p95": "Latencia p95",
        "p99": "Latencia p99", "max": "Latencia máxima", "vus": "VUs máximos",
        "dropped": "Iteraciones descartadas (modelo abierto)", "ceiling": "Techo (ping, misma "
        "carga)", "share": "Fracción del techo", "cpus": "{count} CPU, {model}",
        "all_pass": "El servicio cumplió todos los umbrales ({list}).",
        "some_fail": "El servicio NO cumplió {list}.",
        "no_errors": "Las {requests} peticiones terminaron sin errores.",
        "errors_seen": "El {rate} de las {requests} peticiones falló.",
        "throughput_line": "Promedió {rps} req/s en toda la prueba, con una latencia "
        "promedio de {avg} ms (p95 {p95} ms, p99 {p99} ms).",
        "checks_failed": "Además, el {rate} de los chequeos de los scripts (estado y filas de "
        "cada página) falló: hubo respuestas incorrectas.",
        "checks": "Chequeos cumplidos (estado, filas)",
        "busy": "la máquina estuvo al {busy} de uso, y k6 usó solo {cores} de {count} "
        "núcleos: el servicio usó el resto.",
        "ceiling_line": "Eso es {share} del techo de esta máquina con la misma carga "
        "({ceiling} req/s en /api/v1/ping).",
        "little_ok": "Ley de Little: los VUs promedio ({vus}) coinciden con iteraciones/s x "
        "duración de la iteración ({it}).",
        "little_gap": "Ley de Little: los VUs promedio ({vus}) no coinciden con iteraciones/s "
        "x duración de la iteración ({it}): hubo VUs ociosos (rampas, una parada temprana o "
        "un generador saturado).",
        "outside": "El {share} del tiempo de los VUs transcurrió fuera de las peticiones "
        "(chequeos de k6, rampas): la latencia promedio no es VUs / throughput.",
        "limited": "El generador de carga (k6) usó {cores} de {count} núcleos con la máquina "
        "al {busy} de uso: compitió con el servicio, así que estas cifras son una cota "
        "inferior.",
        "not_limited": "El generador de carga (k6) usó {cores} de {count} núcleos; no fue el "
        "cuello de botella.",
        "dropped_line": "Se descartaron {dropped} iteraciones: el servicio no alcanzó la tasa "
        "pedida con los VUs disponibles.",
    },
    "en": {
        "title": "Load test: {scenario} scenario",
        "configuration": "Configuration", "results": "Results",
        "thresholds": "Thresholds", "conclusion": "Conclusion", "server": "Server side",
        "patterns": "Resilience patterns (alumnos patterns)", "pattern": "Pattern",
        "observed": "Observed",
        "endpoint": "Endpoint", "load_closed": "{vus} virtual users for {seconds} s "
        "(closed model)",
        "load_open": "{rate} requests/s for {seconds} s, up to {vus} virtual users "
        "(open model)",
        "load": "Load", "rows": "Rows in the table", "stack": "Stack", "machine": "Machine",
        "tool": "Tool", "date": "Date", "command": "Command",
        "metric": "Metric", "value": "Value", "threshold": "Threshold", "verdict": "Verdict",
        "pass": "met", "fail": "NOT met",
        "requests": "Total requests", "share_200": "200 responses",
        "errors": "Error rate", "throughput": "Throughput", "avg": "Average latency",
        "p50": "p50 latency", "p90": "p90 latency", "p95": "p95 latency",
        "p99": "p99 latency", "max": "Maximum latency", "vus": "Peak VUs",
        "dropped": "Dropped iterations (open model)", "ceiling": "Ceiling (ping, same load)",
        "share": "Share of the ceiling", "cpus": "{count} CPUs, {model}",
        "all_pass": "The service met every threshold ({list}).",
        "some_fail": "The service did NOT meet {list}.",
        "no_errors": "All {requests} requests completed without errors.",
        "errors_seen": "{rate} of the {requests} requests failed.",
        "throughput_line": "It averaged {rps} req/s over the whole run, with an average "
        "latency of {avg} ms (p95 {p95} ms, p99 {p99} ms).",
        "checks_failed": "Besides, {rate} of the scripts' checks (status and each page's "
        "rows) failed: some answers were wrong.",
        "checks": "Checks passed (status, rows)",
        "busy": "the machine was {busy} busy and k6 used only {cores} of {count} cores: the "
        "service used the rest.",
        "ceiling_line": "That is {share} of this machine's ceiling under the same load "
        "({ceiling} req/s on /api/v1/ping).",
        "little_ok": "Little's law: the average VUs ({vus}) match iterations/s x iteration "
        "time ({it}).",
        "little_gap": "Little's law: the average VUs ({vus}) do not match iterations/s x "
        "iteration time ({it}): VUs sat idle (ramps, an early stop or a saturated "
        "generator).",
        "outside": "{share} of the VUs' time went outside the requests (k6 checks, ramps): "
        "the average latency is not VUs / throughput.",
        "limited": "The load generator (k6) used {cores} of {count} cores with the machine "
        "{busy} busy: it competed with the service, so these figures are a lower bound.",
        "not_limited": "The load generator (k6) used {cores} of {count} cores; it was not the "
        "bottleneck.",
        "dropped_line": "{dropped} iterations were dropped: the service did not keep up with "
        "the requested rate with the VUs available.",
    },
}


# What each scenario asks for (endpoint: its --path, recorded in the run).
SCENARIO_PATHS = {
    "spike": "/api/v1/alumno/alumno?limit=100&offset=0",
    "load": "/api/v1/alumno/alumno?limit=100&offset=<the first 20 pages>",
    "stress": "/api/v1/alumno/alumno?limit=100&offset=<the first 20 pages>",
    "soak": "/api/v1/alumno/alumno?limit=100&offset=<90% first 20 pages, 10% any>",
    "smoke": "/api/v1/alumno/alumno?limit=100&offset=<any page>",
    "pagination": "/api/v1/alumno/alumno?limit=100&offset=<any page, 10% the last ones>",
    "cache-cold": "/api/v1/alumno/alumno?limit=100&offset=<a new one each time>",
}


def run_markdown(name: str, meta: dict[str, Any], figures: RunFigures,
                 ceiling: RunFigures | None, little: LittlesLaw | None,
                 generator: GeneratorVerdict | None, lang: str = "es",
                 server: dict[str, Any] | None = None,
                 proof: dict[str, Any] | None = None) -> str:
    """The whole section."""
    t = TEXT[lang]
    lines = [f"## {t['title'].format(scenario=meta.get('scenario'))}", "",
             f"### {t['configuration']}", ""]
    lines += _configuration(meta, t, lang)
    lines += ["", f"### {t['results']}", "", f"| {t['metric']} | {t['value']} |", "|---|---|"]
    lines += [f"| {label} | {value} |" for label, value in _results(figures, ceiling, t, lang)]
    if server:
        lines += ["", f"### {t['server']}", ""]
        lines += [f"- **{label}:** {value}" for label, value in server_rows(server, lang)]
    if figures.thresholds:
        lines += ["", f"### {t['thresholds']}", "",
                  f"| {t['metric']} | {t['threshold']} | {t['verdict']} |", "|---|---|---|"]
        lines += [f"| `{th.metric}` | `{th.expression}` | "
                  f"{t['pass'] if th.ok else t['fail']} |" for th in figures.thresholds]
    if proof:
        lines += ["", f"### {t['patterns']}", "",
                  f"| {t['pattern']} | {t['observed']} | {t['verdict']} |", "|---|---|---|"]
        lines += [f"| {r.get('pattern')} | {r.get('observed')} | {r.get('verdict')} |"
                  for r in proof.get("results", [])]
    lines += ["", f"### {t['conclusion']}", ""]
    lines += [" ".join(conclusion_sentences(figures, ceiling, little, generator, lang)), ""]
    lines.append(f"<!-- alumnos run {name} -->")
    return "\n".join(lines) + "\n"


def _configuration(meta: dict[str, Any], t: dict[str, str], lang: str) -> list[str]:
    seconds = meta.get("duration_seconds")
    if meta.get("model") == "open":
        load = t["load_open"].format(rate=number(float(meta.get("rate") or 0), 0, lang),
                                     seconds=seconds, vus=meta.get("vus"))
    else:
        load = t["load_closed"].format(vus=meta.get("vus"), seconds=seconds)
    path = meta.get("path") or SCENARIO_PATHS.get(str(meta.get("scenario")),
                                                  "/api/v1/alumno/alumno?limit=100&offset=...")
    machine = meta.get("machine") or {}
    versions = meta.get("versions") or {}
    rows = meta.get("rows")
    items = [
        (t["endpoint"], f"`GET {path}` ({meta.get('url')})"),
        (t["load"], load),
        (t["rows"], "?" if rows is None else number(rows, 0, lang)),
    ]
    if meta.get("stack"):
        items.append((t["stack"], describe_stack(meta["stack"], lang)))
    items += [
        (t["machine"], t["cpus"].format(count=machine.get("cpu_count"),
                                        model=machine.get("cpu_model"))),
        (t["tool"], f"k6 {versions.get('k6', '?')}, `{meta.get('script')}`"),
        (t["date"], str(meta.get("started_at"))),
        (t["command"], f"`{meta.get('command')}`"),
    ]
    return [f"- **{label}:** {value}" for label, value in items]


def _results(figures: RunFigures, ceiling: RunFigures | None, t: dict[str, str],
             lang: str) -> list[tuple[str, str]]:
    lat = figures.latency
    ms = " ms"
    rows = [
        (t["requests"], number(figures.requests, 0, lang)),
        (t["share_200"], "n/a" if figures.share_200 is None else percent(figures.share_200, lang)),
        (t["errors"], percent(figures.error_rate, lang)),
        *([(t["checks"], percent(figures.checks_rate, lang))]
          if figures.checks_rate is not None else []),
        (t["throughput"], number(figures.requests_per_second, 1, lang) + " req/s"),
        (t["avg"], number(lat.avg, 1, lang) + ms), (t["p50"], number(lat.p50, 1, lang) + ms),
        (t["p90"], number(lat.p90, 1, lang) + ms), (t["p95"], number(lat.p95, 1, lang) + ms),
        (t["p99"], number(lat.p99, 1, lang) + ms), (t["max"], number(lat.max, 1, lang) + ms),
        (t["vus"], number(figures.max_vus, 0, lang)),
    ]
    if figures.dropped_iterations:
        rows.append((t["dropped"], number(figures.dropped_iterations, 0, lang)))
    if ceiling is not None and ceiling.requests_per_second:
        rows.append((t["ceiling"], number(ceiling.requests_per_second, 1, lang) + " req/s"))
        rows.append((t["share"], number(figures.requests_per_second
                                        / ceiling.requests_per_second, 2, lang)))
    return rows


def conclusion_sentences(figures: RunFigures, ceiling: RunFigures | None,
                         little: LittlesLaw | None, generator: GeneratorVerdict | None,
                         lang: str) -> list[str]:
    """The conclusion, each sentence derived from the figures, thresholds and checks."""
    t = TEXT[lang]
    sentences = []
    failed = [f"`{th.metric} {th.expression}`" for th in figures.thresholds if not th.ok]
    if figures.thresholds:
        if failed:
            sentences.append(t["some_fail"].format(list=", ".join(failed)))
        else:
            sentences.append(t["all_pass"].format(list=", ".join(
                f"`{th.metric} {th.expression}`" for th in figures.thresholds)))
    requests = number(figures.requests, 0, lang)
    checks_failed = figures.checks_rate is not None and figures.checks_rate < 1
    if figures.error_rate == 0 and not checks_failed:
        sentences.append(t["no_errors"].format(requests=requests))
    elif figures.error_rate > 0:
        sentences.append(t["errors_seen"].format(rate=percent(figures.error_rate, lang),
                                                 requests=requests))
    if checks_failed:
        sentences.append(t["checks_failed"].format(
            rate=percent(1 - (figures.checks_rate or 0), lang)))
    lat = figures.latency
    sentences.append(t["throughput_line"].format(
        rps=number(figures.requests_per_second, 1, lang), avg=number(lat.avg, 1, lang),
        p95=number(lat.p95, 1, lang), p99=number(lat.p99, 1, lang)))
    if figures.dropped_iterations:
        sentences.append(t["dropped_line"].format(
            dropped=number(figures.dropped_iterations, 0, lang)))
    if ceiling is not None and ceiling.requests_per_second:
        sentences.append(t["ceiling_line"].format(
            share=number(figures.requests_per_second / ceiling.requests_per_second, 2, lang),
            ceiling=number(ceiling.requests_per_second, 1, lang)))
    if little is not None:
        key = "little_ok" if little.consistent else "little_gap"
        sentences.append(t[key].format(vus=number(little.configured, 1, lang),
                                       it=number(little.in_iterations, 1, lang)))
        if little.outside_requests > 0.1:
            sentences.append(t["outside"].format(share=percent(little.outside_requests, lang,
                                                               0)))
    if generator is not None:
        key = ("limited" if generator.limited else
               "busy" if generator.machine_busy >= 0.9 else "not_limited")
        sentence = t[key].format(cores=number(generator.k6_cores, 2, lang),
                                 count=generator.cpu_count,
                                 busy=percent(generator.machine_busy, lang, 0))
        sentences.append(sentence[0].upper() + sentence[1:])
    return sentences
