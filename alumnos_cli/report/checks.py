"""Whether a run's figures hold together: Little's law, and the load generator's share."""

from __future__ import annotations

from alumnos_cli.report.generators import GENERATOR_SHARE, SATURATED
from alumnos_cli.report.model import (
    GeneratorVerdict,
    LittlesLaw,
    RunFigures,
    RunMeta,
)

# A run that ended before this share of its planned length stopped early (stress).
FULL_LENGTH = 0.95
# k6 counts as a limit on a machine this busy when it took at least this share of the cores
# (the same rule for each host of a split run: report.generators).


def littles_law(figures: RunFigures, meta: RunMeta) -> LittlesLaw | None:
    """The check for a closed-model run; None for the open model, where VUs are a pool."""
    if meta.open_model or not figures.duration_seconds:
        return None
    planned = float(meta.duration_seconds or 0)
    if planned and figures.duration_seconds < FULL_LENGTH * planned:
        return None  # stopped early (stress): the shape's average no longer applies
    configured = float(meta.vus or figures.max_vus) * meta.load_shape.average_share()
    iterations_per_s = figures.iterations / figures.duration_seconds
    return LittlesLaw(configured=configured,
                      in_requests=figures.requests_per_second * figures.latency.avg / 1000,
                      in_iterations=iterations_per_s * figures.iteration_avg_ms / 1000)


def generator_verdict(meta: RunMeta) -> GeneratorVerdict | None:
    """From the CPU k6 used and how busy the machine was during the run."""
    usage = meta.generator
    if usage is None:
        return None
    cores, count, busy = usage.k6_cores, usage.cpu_count, usage.machine_busy
    apart = cpus_apart(meta)
    if apart:
        # k6 on CPUs of its own took nothing from the stack: it limited the load only if it
        # kept those CPUs busy.
        limited = cores >= SATURATED * apart
        own = f"{apart} CPU{'s' if apart > 1 else ''}"
        text = (f"k6 ran on {own} of its own, apart from the stack's, and used {cores:.2f} "
                f"of {'them' if apart > 1 else 'it'}: "
                + ("it was the limit, so these figures are a lower bound; give it more CPUs"
                   if limited else "the generator was not the bottleneck"))
        return GeneratorVerdict(cores, count, busy, limited, text, apart)
    # On a saturated machine, every core k6 burns is one the service did not get.
    limited = busy >= SATURATED and cores >= GENERATOR_SHARE * count
    if limited:
        text = (f"k6 used {cores:.2f} of {count} cores while the machine was {busy:.0%} busy: "
                "the load generator competed with the service, so these figures are a lower "
                "bound; run k6 on another machine, or compare what each request cost (CPU per "
                "1,000 requests), for the service's own limit")
    elif busy >= SATURATED:
        text = (f"the machine was {busy:.0%} busy, k6 taking only {cores:.2f} of {count} cores: "
                "the service itself used what was left")
    else:
        text = (f"k6 used {cores:.2f} of {count} cores; the machine was {busy:.0%} busy: "
                "the generator was not the bottleneck")
    return GeneratorVerdict(cores, count, busy, limited, text)


def cpus_apart(meta: RunMeta) -> int:
    """How many CPUs k6 had to itself, apart from the stack's (0: it shared them)."""
    placement = meta.placement
    if placement is None or not placement.generator_cpus or not placement.stack_cpus:
        return 0
    if set(placement.generator_cpus) & set(placement.stack_cpus):
        return 0
    return len(placement.generator_cpus)
