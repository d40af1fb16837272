"""What operators see: health and readiness probes (``health``), Prometheus metrics
(``metrics``), and log set-up with redaction (``logs``)."""
