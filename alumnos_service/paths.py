"""The service's public paths: one source for the blueprints, the CLI and the proofs."""

API_PREFIX = "/api/v1"
PAGE_PATH = f"{API_PREFIX}/alumno/alumno"  # ?limit=100&offset=0: a page of alumnos
PING_PATH = f"{API_PREFIX}/ping"  # the same app and middleware, no I/O: the ceiling
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"
HEALTH_PATH = "/health"
READY_PATH = "/ready"
METRICS_PATH = "/metrics"
FIRST_PAGE = f"{PAGE_PATH}?limit=100&offset=0"  # the reference's request
