"""``[plugins.metrics]`` in plugins.toml; where things go is set by environment variables
(``METRICS_BIND``, ``OTLP_OTLS_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``), like the
reference server's."""

from __future__ import annotations

import msgspec


class MetricsSettings(msgspec.Struct, forbid_unknown_fields=True):
    """Settings of the metrics plugin (every key is optional)."""

    #: one log line per request at INFO: method, route template, status, duration.
    request_log: bool = True
    #: the service name traces are exported under.
    service_name: str = "imageapi"
