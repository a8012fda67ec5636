"""The alumnos service: a Flask application factory (`alumnos_service.app.create_app`).

Nothing is imported here, so the CLI can read the service's defaults and paths
(`alumnos_service.config`, `alumnos_service.paths`) without Flask installed.
"""
