"""Benchmarks: k6 scenarios run against the service, each run kept in its own folder."""
