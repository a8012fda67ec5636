"""Renderers: results in, text out."""
