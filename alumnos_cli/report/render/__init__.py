"""Renderers: a typed report (or comparison) and a language in, text out; no file is read."""
