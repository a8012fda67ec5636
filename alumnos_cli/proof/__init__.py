"""`alumnos patterns`: each resilience pattern proven on the running stack, by experiment."""
