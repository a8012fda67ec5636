"""The HTML page's own words in each report language: headings, labels, charts and notes.

A page is in one language, the one `--lang` asked for (the conclusion's); its <html lang>
says which.
"""

from __future__ import annotations

from alumnos_cli.report.generators import SATURATED
from alumnos_cli.report.model import GeneratorVerdict
from alumnos_cli.report.render.numbers import number, percent
from alumnos_cli.report.render.words import WORDS

TEXT = {
    "es": {
        **WORDS["es"],
        "part": "parte",
        "consistency": "Coherencia",
        "charts": "Gráficos",
        "scenario": "escenario", "load": "carga", "target": "objetivo", "rows": "filas",
        "stack": "pila", "cpus": "CPU", "started": "inicio", "command": "comando",
        "requests": "total de peticiones", "error_rate": "tasa de error",
        "throughput": "throughput", "latency_low": "latencia promedio / p50 / p90",
        "latency_high": "latencia p95 / p99 / máxima", "peak_vus": "VUs máximos",
        "dropped": "iteraciones descartadas", "ceiling": "fracción del techo (ping)",
        "little": "ley de Little",
        "generator": "generador de carga", "cross": "contraste",
        "pattern": "patrón", "observed": "observado", "verdict": "resultado",
        "x_label": "segundos desde el inicio", "x_legend": "tiempo", "measure": "medida",
        "replica": "réplica",
        "throughput_chart": "Throughput (peticiones/s)", "requests_unit": " pet/s",
        "latency_chart": "Latencia por segundo: p50, p95, p99 (ms)",
        "latency_note": "Percentiles de cada segundo, no una distribución: la corrida no "
        "registró un histograma de latencias.",
        "errors_chart": "Errores (% de las peticiones)", "errors": "errores",
        "vus_chart": "Usuarios virtuales (VUs)", "vus": "VUs",
        "vus_active": "VUs activos", "vus_allocated": "VUs reservados",
        "vus_note": "Modelo abierto: k6 reserva {vus} VUs y activa los que la tasa pedida "
        "necesita; los VUs máximos cuentan los reservados.",
        "balancer_chart": "En el balanceador (peticiones/s): atendidas por una réplica, "
        "rechazadas", "served": "atendidas", "refused": "rechazadas",
        "summary_chart": "Latencia de toda la prueba: promedio, percentiles y máximo (ms)",
        "summary_note": "Cifras del resumen de k6, no una distribución: la corrida no "
        "registró un histograma de latencias (k6 no escribió en ningún Prometheus).",
        "latency_note_histogram": "Percentiles de cada segundo; la distribución de toda la "
        "corrida está en el histograma de más abajo.",
        "latency_note_split": "Percentiles de cada segundo, el más alto de los de cada "
        "generador (el combinado es a lo sumo ese), no una distribución.",
        "histogram_chart": "Distribución de la latencia de toda la corrida (peticiones por "
        "intervalo, ms)",
        "histogram_note": "Histograma nativo de k6 leído de Prometheus, sin las peticiones de "
        "setup(); cada intervalo es más ancho que el anterior en la misma proporción.",
        "requests_series": "peticiones", "avg": "promedio", "max": "máx.",
        "replicas_chart": "Peticiones por réplica (HAProxy)",
        "ejection": "{replica} fuera",
    },
    "en": {
        **WORDS["en"],
        "part": "part",
        "consistency": "Consistency",
        "charts": "Charts",
        "scenario": "scenario", "load": "load", "target": "target", "rows": "rows",
        "stack": "stack", "cpus": "CPUs", "started": "started", "command": "command",
        "requests": "total requests", "error_rate": "error rate",
        "throughput": "throughput", "latency_low": "latency avg / p50 / p90",
        "latency_high": "latency p95 / p99 / max", "peak_vus": "peak VUs",
        "dropped": "dropped iterations", "ceiling": "share of the ceiling (ping)",
        "little": "Little's law",
        "generator": "load generator", "cross": "cross-check",
        "pattern": "pattern", "observed": "observed", "verdict": "verdict",
        "x_label": "seconds since the start", "x_legend": "time", "measure": "measure",
        "replica": "replica",
        "throughput_chart": "Throughput (requests/s)", "requests_unit": " req/s",
        "latency_chart": "Latency per second: p50, p95, p99 (ms)",
        "latency_note": "Each second's percentiles, not a distribution: the run recorded no "
        "latency histogram.",
        "errors_chart": "Errors (% of requests)", "errors": "errors",
        "vus_chart": "Virtual users (VUs)", "vus": "VUs",
        "vus_active": "VUs active", "vus_allocated": "VUs allocated",
        "vus_note": "Open model: k6 allocates {vus} VUs and activates as many as the "
        "requested rate needs; peak VUs counts the allocated ones.",
        "balancer_chart": "At the balancer (requests/s): served by a replica, refused",
        "served": "served", "refused": "refused",
        "summary_chart": "Latency over the whole run: average, percentiles and maximum (ms)",
        "summary_note": "Figures from k6's summary, not a distribution: the run recorded no "
        "latency histogram (k6 wrote into no Prometheus).",
        "latency_note_histogram": "Each second's percentiles; the whole run's distribution "
        "is the histogram below.",
        "latency_note_split": "Each second's percentiles, the highest of the generators' "
        "(the merged one is at most that), not a distribution.",
        "histogram_chart": "Latency distribution over the whole run (requests per interval, "
        "ms)",
        "histogram_note": "k6's native histogram read from Prometheus, setup()'s requests "
        "left out; each interval is wider than the one before by the same factor.",
        "requests_series": "requests", "avg": "avg", "max": "max",
        "replicas_chart": "Requests per replica (HAProxy)",
        "ejection": "{replica} out",
    },
}

# The load generator's verdict in Spanish; GeneratorVerdict.text is its English.
GENERATOR_ES = {
    "limited": "k6 usó {cores} de {count} núcleos con la máquina al {busy} de uso: el "
    "generador compitió con el servicio, así que estas cifras son una cota inferior; corra k6 "
    "en otra máquina, o compare lo que costó cada petición (CPU por 1.000 peticiones), para "
    "conocer el límite del propio servicio",
    "busy": "la máquina estuvo al {busy} de uso y k6 tomó solo {cores} de {count} núcleos: el "
    "servicio usó el resto",
    "free": "k6 usó {cores} de {count} núcleos; la máquina estuvo al {busy} de uso: el "
    "generador no fue el cuello de botella",
    "apart_limited": "k6 corrió en {apart} CPU propia(s), aparte de las de la pila, y usó "
    "{cores}: fue el límite, así que estas cifras son una cota inferior; dele más CPUs",
    "apart_free": "k6 corrió en {apart} CPU propia(s), aparte de las de la pila, y usó "
    "{cores}: el generador no fue el cuello de botella",
}


def generator_text(generator: GeneratorVerdict, lang: str) -> str:
    """Whether the load generator limited the figures, in the page's language."""
    if lang == "en":
        return generator.text
    if generator.apart:
        key = "apart_limited" if generator.limited else "apart_free"
    else:
        key = ("limited" if generator.limited else
               "busy" if generator.machine_busy >= SATURATED else "free")
    return GENERATOR_ES[key].format(cores=number(generator.k6_cores, 2, lang),
                                    count=generator.cpu_count, apart=generator.apart,
                                    busy=percent(generator.machine_busy, lang, 0))
