"""Words for what makes a run's figures attributable: how its answers were verified, what each
part spent per request, where each ran, and what an independent generator drove."""

from __future__ import annotations

from alumnos_cli.report.attribution import Costs, CrossCheck, Placement, Verification
from alumnos_cli.report.model import RunFigures
from alumnos_cli.report.render.numbers import number, percent

# A fault this rare is what the sampling statement is about: 1 response in 1,000.
RARE_FAULT = 0.001

COMPONENTS = {
    "en": {"replicas": "service replicas (Granian)", "haproxy": "balancer (HAProxy)",
           "breaker": "breaker watcher", "postgresql": "PostgreSQL", "redis": "Redis",
           "k6": "load generator (k6)", "service": "the stack in all"},
    "es": {"replicas": "réplicas del servicio (Granian)", "haproxy": "balanceador (HAProxy)",
           "breaker": "vigía del circuit breaker", "postgresql": "PostgreSQL",
           "redis": "Redis", "k6": "generador de carga (k6)", "service": "la pila en total"},
}

TEXT = {
    "en": {
        "sample": "sampling", "sample_value": "every response: status, type and size; one in "
        "{n} per VU in full (rows, offset, ids, total)",
        "full": "checked in full during the load", "wrong": "wrong answers during the load",
        "ends": "full verification before / after the load", "miss": "what sampling misses",
        "miss_value": "a fault in 1 response of 1,000 that keeps status, type and size goes "
        "unseen with probability {p}",
        "passed": "passed", "shared": "{names}: a system server, which may also serve other "
        "clients", "no_stack": "no stack CPU: the target was not started by alumnos up",
        "cross": "{tool} drove {rps} req/s on {path} ({connections} connections, {seconds} s, "
        "after k6); k6's figure is {share} of it",
        "placement": "stack on CPUs {stack}, k6 on {generator}; not pinned: {unpinned}",
        "anywhere": "any CPU", "none": "nothing",
    },
    "es": {
        "sample": "muestreo", "sample_value": "cada respuesta: estado, tipo y tamaño; una de "
        "cada {n} por VU, completa (filas, offset, ids, total)",
        "full": "verificadas completas durante la carga",
        "wrong": "respuestas incorrectas durante la carga",
        "ends": "verificación completa antes / después de la carga",
        "miss": "lo que el muestreo no ve",
        "miss_value": "una falla en 1 de cada 1.000 respuestas que conserva estado, tipo y "
        "tamaño pasa inadvertida con probabilidad {p}",
        "passed": "correcta", "shared": "{names}: un servidor del sistema, que puede atender "
        "también a otros clientes",
        "no_stack": "sin CPU de la pila: el objetivo no lo inició alumnos up",
        "cross": "{tool} obtuvo {rps} req/s en {path} ({connections} conexiones, {seconds} s, "
        "después de k6); la cifra de k6 es {share} de esa",
        "placement": "pila en las CPU {stack}, k6 en {generator}; sin fijar: {unpinned}",
        "anywhere": "cualquier CPU", "none": "nada",
    },
}


def verification_rows(verification: Verification, requests: int,
                      lang: str = "en") -> list[tuple[str, str]]:
    """How the run's answers were verified, as (label, value) rows."""
    t = TEXT[lang]
    ends = " / ".join(t["passed"] if result == "passed" else result
                      for result in (verification.before, verification.after))
    rows = [(t["sample"], t["sample_value"].format(n=number(verification.sample, 0, lang))),
            (t["ends"], ends)]
    if verification.checked_in_full is not None:
        rows.append((t["full"], number(verification.checked_in_full, 0, lang)))
    if verification.wrong is not None:
        rows.append((t["wrong"], number(verification.wrong, 0, lang)))
    chance = verification.miss_chance(requests, RARE_FAULT)
    rows.append((t["miss"], t["miss_value"].format(p=percent(chance, lang, 1))))
    return rows


def cost_rows(costs: Costs, lang: str = "en") -> list[tuple[str, str, str]]:
    """Each part's CPU over the run and per 1,000 requests: (part, CPU s, CPU ms per 1,000)."""
    names = COMPONENTS[lang]
    rows = []
    for component, seconds in costs.cpu_seconds.items():
        per_1000 = costs.per_1000(component)
        rows.append((names.get(component, component), number(seconds, 2, lang),
                     "-" if per_1000 is None else number(per_1000, 1, lang)))
    service = costs.service_per_1000
    if service is not None:
        total = sum(v for k, v in costs.cpu_seconds.items() if k != "k6")
        rows.append((names["service"], number(total, 2, lang), number(service, 1, lang)))
    return rows


def cost_notes(costs: Costs, lang: str = "en") -> list[str]:
    """What the cost table cannot say on its own."""
    t = TEXT[lang]
    notes = []
    if not costs.stack_measured:
        notes.append(t["no_stack"])
    if costs.shared:
        notes.append(t["shared"].format(names=", ".join(
            COMPONENTS[lang].get(name, name) for name in costs.shared)))
    return notes


def cross_check_text(cross: CrossCheck, figures: RunFigures, lang: str = "en") -> str:
    """The independent generator's figure beside k6's."""
    share = (figures.requests_per_second / cross.requests_per_second
             if cross.requests_per_second else 0.0)
    return TEXT[lang]["cross"].format(
        tool=cross.tool, rps=number(cross.requests_per_second, 0, lang), path=cross.path,
        connections=cross.connections, seconds=cross.seconds, share=percent(share, lang, 0))


def placement_text(placement: Placement, lang: str = "en") -> str:
    """Where the stack and the load generator ran."""
    t = TEXT[lang]

    def cpus(value: tuple[int, ...] | None) -> str:
        return ",".join(map(str, value)) if value else t["anywhere"]

    stack = cpus(placement.stack_cpus) + (f" (cpuset {placement.cpuset})"
                                          if placement.cpuset else "")
    return t["placement"].format(stack=stack, generator=cpus(placement.generator_cpus),
                                 unpinned="; ".join(placement.not_pinned) or t["none"])
