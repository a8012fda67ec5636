"""The OpenAPI document is valid, covers every route, and the service keeps to it (schemathesis)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate

from alumnos_cli.seed.load import seed_alumnos
from alumnos_cli.settings import Settings
from alumnos_service.openapi import DOCUMENT


@pytest.fixture
def app(settings: Settings, cache_prefix: str,
        make_app: Callable[[dict[str, object]], Flask]) -> Flask:
    seed_alumnos(settings, count=120, seed=3, cache_prefix=cache_prefix)
    return make_app({"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
                     "CACHE_PREFIX": cache_prefix})


def test_document_is_valid_openapi() -> None:
    validate(DOCUMENT)


def test_document_covers_every_route(app: Flask) -> None:
    routes = {rule.rule.replace("<int:", "{").replace(">", "}")
              for rule in app.url_map.iter_rules() if rule.endpoint != "static"}
    assert routes == set(DOCUMENT["paths"])


def test_served_document_is_the_document(app: Flask) -> None:
    assert app.test_client().get("/api/v1/openapi.json").get_json() == DOCUMENT


def test_service_keeps_to_its_document(app: Flask) -> None:
    # Driven through Hypothesis directly: schemathesis' pytest plugin does not run on pytest 9.
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {operation.label for operation in operations}
    assert {"GET /api/v1/alumno/alumno", "GET /api/v1/alumno/alumno/{alumno_id}"} <= labels
    for operation in operations:

        @settings(max_examples=60, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def keeps_to_document(case: schemathesis.Case) -> None:
            case.call_and_validate()

        keeps_to_document()
