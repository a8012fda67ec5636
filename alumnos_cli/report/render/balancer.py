"""Words for what the balancer did during a run: requests it refused, by reason, and the
circuit breaker's ejections on the run's timeline."""

from __future__ import annotations

from alumnos_cli.report.balancer import BalancerActivity, Ejection
from alumnos_cli.report.render.numbers import number, percent

TEXT = {
    "en": {
        "refused": "answered by the balancer", "none": "none: every request reached a replica",
        "of": "{n} of {total} responses ({share})", "breaker": "circuit breaker",
        "off": "off: counts, never takes a replica out", "kept": "on: no replica taken out",
        "ejected": "on: {n} replicas taken out", "ejected_one": "on: 1 replica taken out",
        "ejection": "{replica} out",
        "for": "from {start} s for {seconds} s", "until_end": "from {start} s to the end",
        "cause": "p50 {median} ms, its peers {peers} ms; {failed} failed",
        "sentence_refused": "The balancer answered {n} requests itself ({share}): {reasons}; "
        "they count among the errors above.",
        "sentence_kept": "The circuit breaker took no replica out.",
        "sentence_ejected": "The circuit breaker took a replica out {n} times: {list}.",
        "sentence_ejected_one": "The circuit breaker took a replica out once: {list}.",
    },
    "es": {
        "refused": "respondidas por el balanceador",
        "none": "ninguna: todas las peticiones llegaron a una réplica",
        "of": "{n} de {total} respuestas ({share})", "breaker": "circuit breaker",
        "off": "apagado: cuenta, nunca saca una réplica", "kept": "activo: no sacó réplicas",
        "ejected": "activo: sacó {n} réplicas", "ejected_one": "activo: sacó 1 réplica",
        "ejection": "{replica} fuera",
        "for": "desde el segundo {start} durante {seconds} s",
        "until_end": "desde el segundo {start} hasta el final",
        "cause": "p50 {median} ms frente a {peers} ms de las demás; {failed} fallidas",
        "sentence_refused": "El balanceador respondió él mismo {n} peticiones ({share}): "
        "{reasons}; cuentan entre los errores de arriba.",
        "sentence_kept": "El circuit breaker no sacó ninguna réplica.",
        "sentence_ejected": "El circuit breaker sacó una réplica {n} veces: {list}.",
        "sentence_ejected_one": "El circuit breaker sacó una réplica una vez: {list}.",
    },
}

# Why the balancer answered a request itself, as alumnos_cli/stack/watcher.py names it.
REASONS = {
    "en": {"no_replica": "no replica available (503)",
           "queue_timeout": "waited in the queue past its timeout (503)",
           "queue_full": "queue full, refused at once (503)",
           "rate_limit": "over the rate limit (429)"},
    "es": {"no_replica": "ninguna réplica disponible (503)",
           "queue_timeout": "esperó en la cola más que su límite (503)",
           "queue_full": "cola llena, rechazada de inmediato (503)",
           "rate_limit": "sobre el límite de tasa (429)"},
}


def _plural(key: str, count: int) -> str:
    return f"{key}_one" if count == 1 else key


def _reasons(activity: BalancerActivity, lang: str) -> str:
    names = REASONS[lang]
    return ", ".join(f"{number(count, 0, lang)} {names.get(reason, reason)}"
                     for reason, count in activity.refused.items() if count)


def ejection_text(ejection: Ejection, lang: str = "en") -> tuple[str, str]:
    """One ejection as (which replica, when and why)."""
    t = TEXT[lang]
    start = number(ejection.start_s, 1, lang)
    when = (t["until_end"].format(start=start) if ejection.end_s is None else
            t["for"].format(start=start, seconds=number(ejection.end_s - ejection.start_s, 1,
                                                        lang)))
    return t["ejection"].format(replica=ejection.replica), f"{when}: {_cause(ejection, lang)}"


def _cause(ejection: Ejection, lang: str) -> str:
    """Why the breaker took the replica out, in the report's language when it said in figures."""
    cause = ejection.cause
    if cause.median_ms is None or cause.peers_ms is None:
        return cause.why
    return TEXT[lang]["cause"].format(median=number(cause.median_ms, 0, lang),
                                      peers=number(cause.peers_ms, 0, lang),
                                      failed=percent(cause.failed_share or 0.0, lang, 0))


def balancer_rows(activity: BalancerActivity, lang: str = "en") -> list[tuple[str, str]]:
    """Refusals by reason, the breaker's state, and each ejection, as (label, value) rows."""
    t = TEXT[lang]
    if activity.refused_total:
        refused = t["of"].format(
            n=number(activity.refused_total, 0, lang),
            total=number(activity.responses, 0, lang),
            share=percent(activity.refused_share, lang)) + ": " + _reasons(activity, lang)
    else:
        refused = t["none"]
    ejections = activity.ejections
    breaker = (t["off"] if not activity.breaker_enabled else
               t[_plural("ejected", len(ejections))].format(n=len(ejections)) if ejections
               else t["kept"])
    rows = [(t["refused"], refused), (t["breaker"], breaker)]
    return rows + [ejection_text(ejection, lang) for ejection in ejections]


def balancer_sentences(activity: BalancerActivity | None, lang: str) -> list[str]:
    """The conclusion's words on the balancer: what it refused, whom the breaker took out."""
    if activity is None:
        return []
    t = TEXT[lang]
    sentences = []
    if activity.refused_total:
        sentences.append(t["sentence_refused"].format(
            n=number(activity.refused_total, 0, lang),
            share=percent(activity.refused_share, lang), reasons=_reasons(activity, lang)))
    ejections = activity.ejections
    if ejections:
        listed = "; ".join(" ".join(ejection_text(e, lang)) for e in ejections)
        sentences.append(t[_plural("sentence_ejected", len(ejections))].format(
            n=len(ejections), list=listed))
    elif activity.breaker_enabled:
        sentences.append(t["sentence_kept"])
    return sentences
