"""What run folders written before `bench` recorded everything did not say, in one place.

Runs now record their load stages and the request their scenario made (`scenario_definition`
in meta.json), so editing a scenario never changes how an old run reads. Runs made before
that are completed from the definitions as they stood when those runs were made; nothing
here is read for a run that recorded its own.
"""

from __future__ import annotations

MODEL = "closed"  # the open model (--rate) came with the `model` field
ANY_PAGE = "/api/v1/alumno/alumno?limit=100&offset=..."

# k6/lib/shapes.json as it stood until scenarios recorded their stages.
STAGES: dict[str, tuple[tuple[float, float], ...]] = {
    "spike": ((0.05, 1), (0.85, 1), (0.1, 0)),
    "load": ((0.1, 1), (0.8, 1), (0.1, 0)),
    "stress": ((0.04, 0.2), (0.16, 0.2), (0.04, 0.4), (0.16, 0.4), (0.04, 0.6), (0.16, 0.6),
               (0.04, 0.8), (0.16, 0.8), (0.04, 1), (0.16, 1)),
}

# The request each scenario made, as the report wrote it until scenarios recorded it.
REQUEST_PATHS: dict[str, str] = {
    "spike": "/api/v1/alumno/alumno?limit=100&offset=0",
    "load": "/api/v1/alumno/alumno?limit=100&offset=<the first 20 pages>",
    "stress": "/api/v1/alumno/alumno?limit=100&offset=<the first 20 pages>",
    "soak": "/api/v1/alumno/alumno?limit=100&offset=<90% first 20 pages, 10% any>",
    "smoke": "/api/v1/alumno/alumno?limit=100&offset=<any page>",
    "pagination": "/api/v1/alumno/alumno?limit=100&offset=<any page, 10% the last ones>",
    "cache-cold": "/api/v1/alumno/alumno?limit=100&offset=<a new one each time>",
}


def stages(scenario: str) -> tuple[tuple[float, float], ...]:
    """The stages an old run of this scenario ran; none for a constant load."""
    return STAGES.get(scenario, ())


def request_path(scenario: str, path: str | None) -> str:
    """The request an old run of this scenario made."""
    return path or REQUEST_PATHS.get(scenario, ANY_PAGE)
