"""WSGI entry point for Granian: `granian --interface wsgi wsgi:app` from this folder."""

from alumnos_service.app import create_app

app = create_app()
