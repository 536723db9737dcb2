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


DEFAULT_BIND = "127.0.0.1:8088"


def parse_bind(value: str | None) -> tuple[str, int] | None:
    """``METRICS_BIND`` as (host, port); None for ``off``. ``[::1]:8088`` for IPv6."""
    value = (value or DEFAULT_BIND).strip()
    if value.lower() in ("off", "false", "0", "no", "none"):
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"METRICS_BIND must be HOST:PORT or off, not {value!r}")
    return host.strip("[]"), int(port)
