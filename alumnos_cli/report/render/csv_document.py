"""A run's time series as CSV: a header row, then one row per second."""

from __future__ import annotations

import csv
import io
from dataclasses import astuple, fields

from alumnos_cli.report.model import TimeSeries


def timeseries_csv(series: TimeSeries) -> str:
    """The columns are the JSON's `timeseries` keys; a second k6 reported nothing for is an
    empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(field.name for field in fields(series))
    writer.writerows(zip(*astuple(series), strict=True))  # csv writes None as ""
    return out.getvalue()
