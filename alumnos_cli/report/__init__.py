"""Reports: a run folder read once into a typed report, comparisons, and their renderers."""
