"""WSGI entry point for Granian: `granian --interface wsgi wsgi:app` from this folder."""

from service import create_app

app = create_app()
