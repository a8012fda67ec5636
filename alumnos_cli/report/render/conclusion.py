"""The conclusion of a run's report: every sentence derived from its figures and checks."""

from __future__ import annotations

from alumnos_cli.report.model import RunReport
from alumnos_cli.report.render.balancer import balancer_sentences
from alumnos_cli.report.render.numbers import number, percent

TEXT = {
    "es": {
        "all_pass": "El servicio cumplió todos los umbrales ({list}).",
        "some_fail": "El servicio NO cumplió {list}.",
        "no_errors": "Las {requests} peticiones terminaron sin errores.",
        "errors_seen": "El {rate} de las {requests} peticiones falló.",
        "throughput_line": "Promedió {rps} req/s en toda la prueba, con una latencia "
        "promedio de {avg} ms (p95 {p95} ms, p99 {p99} ms).",
        "checks_failed": "Además, el {rate} de los chequeos de los scripts (estado y filas de "
        "cada página) falló: hubo respuestas incorrectas.",
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
        "right_answers": "Las respuestas fueron correctas: verificadas completas antes y después "
        "de la carga, y durante ella cada una por estado, tipo y tamaño y una de cada {n} por "
        "VU completa.",
        "wrong_answers": "Hubo respuestas incorrectas: {wrong} durante la carga; después de "
        "ella, la verificación completa dio: {after}.",
        "cost_line": "Servir 1.000 peticiones le costó a la pila {service} ms de CPU, y a k6 "
        "{k6} ms.",
        "cross_line": "Como contraste, {tool} obtuvo {rps} req/s en la misma ruta: la cifra de "
        "k6 es {share} de esa.",
    },
    "en": {
        "all_pass": "The service met every threshold ({list}).",
        "some_fail": "The service did NOT meet {list}.",
        "no_errors": "All {requests} requests completed without errors.",
        "errors_seen": "{rate} of the {requests} requests failed.",
        "throughput_line": "It averaged {rps} req/s over the whole run, with an average "
        "latency of {avg} ms (p95 {p95} ms, p99 {p99} ms).",
        "checks_failed": "Besides, {rate} of the scripts' checks (status and each page's "
        "rows) failed: some answers were wrong.",
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
        "right_answers": "The answers were right: verified in full before and after the load, "
        "and during it each one by status, type and size and one in {n} per VU in full.",
        "wrong_answers": "Some answers were wrong: {wrong} during the load; after it, the full "
        "verification gave: {after}.",
        "cost_line": "Serving 1,000 requests cost the stack {service} ms of CPU, and k6 {k6} "
        "ms.",
        "cross_line": "As a cross-check, {tool} drove {rps} req/s on the same path: k6's "
        "figure is {share} of it.",
    },
}


def conclusion_sentences(report: RunReport, lang: str) -> list[str]:
    """The conclusion, each sentence derived from the figures, thresholds and checks."""
    t = TEXT[lang]
    return [*_verdicts(report, t, lang), *balancer_sentences(report.meta.balancer, lang),
            *_answers(report, t, lang), *_speed(report, t, lang), *_consistency(report, t, lang)]


def _answers(report: RunReport, t: dict[str, str], lang: str) -> list[str]:
    verification = report.meta.verification
    if verification is None:
        return []
    if verification.passed:
        return [t["right_answers"].format(n=number(verification.sample, 0, lang))]
    return [t["wrong_answers"].format(wrong=number(verification.wrong or 0, 0, lang),
                                      after=verification.after)]


def _verdicts(report: RunReport, t: dict[str, str], lang: str) -> list[str]:
    figures = report.figures
    sentences = []
    failed = [f"`{th.metric} {th.expression}`" for th in figures.thresholds if not th.ok]
    if failed:
        sentences.append(t["some_fail"].format(list=", ".join(failed)))
    elif figures.thresholds:
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
    return sentences


def _speed(report: RunReport, t: dict[str, str], lang: str) -> list[str]:
    figures, ceiling = report.figures, report.ceiling
    lat = figures.latency
    sentences = [t["throughput_line"].format(
        rps=number(figures.requests_per_second, 1, lang), avg=number(lat.avg, 1, lang),
        p95=number(lat.p95, 1, lang), p99=number(lat.p99, 1, lang))]
    if figures.dropped_iterations:
        sentences.append(t["dropped_line"].format(
            dropped=number(figures.dropped_iterations, 0, lang)))
    if ceiling is not None and ceiling.requests_per_second:
        sentences.append(t["ceiling_line"].format(
            share=number(figures.requests_per_second / ceiling.requests_per_second, 2, lang),
            ceiling=number(ceiling.requests_per_second, 1, lang)))
    costs, cross = report.meta.costs, report.meta.cross_check
    if costs is not None and costs.service_per_1000 is not None:
        sentences.append(t["cost_line"].format(
            service=number(costs.service_per_1000, 1, lang),
            k6=number(costs.per_1000("k6") or 0, 1, lang)))
    if cross is not None and cross.requests_per_second:
        sentences.append(t["cross_line"].format(
            tool=cross.tool, rps=number(cross.requests_per_second, 0, lang),
            share=percent(figures.requests_per_second / cross.requests_per_second, lang, 0)))
    return sentences


def _consistency(report: RunReport, t: dict[str, str], lang: str) -> list[str]:
    sentences = []
    little, generator = report.little, report.generator
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
