"""The words a run's report says the same in markdown and on the HTML page, in each report
language: the title, the section headings, the verdicts and the CPU-cost columns. Each format
adds its own labels (markdown's table rows, the page's charts) to these."""

from __future__ import annotations

WORDS = {
    "es": {
        "title": "Prueba de carga: escenario {scenario}",
        "configuration": "Configuración", "results": "Resultados", "thresholds": "Umbrales",
        "conclusion": "Conclusión", "server": "Lado del servidor",
        "balancer": "Balanceador y circuit breaker",
        "patterns": "Patrones de resiliencia (alumnos patterns)",
        "verification": "Verificación de las respuestas", "costs": "CPU por 1.000 peticiones",
        "cpu_s": "CPU (s)", "cpu_ms": "CPU (ms) por 1.000 peticiones",
        "pass": "cumplido", "fail": "NO cumplido",
    },
    "en": {
        "title": "Load test: {scenario} scenario",
        "configuration": "Configuration", "results": "Results", "thresholds": "Thresholds",
        "conclusion": "Conclusion", "server": "Server side",
        "balancer": "Balancer and circuit breaker",
        "patterns": "Resilience patterns (alumnos patterns)",
        "verification": "Answers verified", "costs": "CPU per 1,000 requests",
        "cpu_s": "CPU (s)", "cpu_ms": "CPU (ms) per 1,000 requests",
        "pass": "met", "fail": "NOT met",
    },
}
