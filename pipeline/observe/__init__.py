"""What operators see of roamclear's processes: Prometheus metrics (metrics), the worker's
/metrics, /health and /ready (worker_http), the API's readiness checks (probes) and log lines
in text or JSON with secrets redacted (logs). docs/observability.md lists every metric."""
