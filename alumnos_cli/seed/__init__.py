"""Seeding: two million deterministic fake alumnos, loaded at the speed of COPY."""
