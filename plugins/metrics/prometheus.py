"""Prometheus: request metrics from Litestar's own middleware, the index and the plugins'
queues counted at scrape time, hook calls timed through the kernel's dispatch observer,
all served on a listener of its own (``METRICS_BIND``), never on the public port.

Request metrics live in ``prometheus_client``'s process-wide registry (Litestar's
middleware registers them there); everything else in a registry of this kernel's, so two
kernels in one process (tests) never collide. A scrape serves both.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from kernel.tables import files

if TYPE_CHECKING:
    from kernel.core import Kernel


def request_middleware() -> Any:
    """Litestar's Prometheus middleware, labelled by route template (not raw path)."""
    config = PrometheusConfig(app_name="imageapi", prefix="imageapi", group_path=True)
    return config.middleware


class IndexCollector(Collector):
    """Counted when scraped: files in the index, work pending in every queue."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def collect(self) -> Iterator[GaugeMetricFamily]:
        query = (
            select(files.c.media_type, func.count())
            .where(files.c.status == "present", files.c.error.is_(None))
            .group_by(files.c.media_type)
        )
        unhashed = select(func.count()).where(
            files.c.status == "present", files.c.content_hash.is_(None), files.c.error.is_(None)
        )
        with self.kernel.db.read() as conn:
            by_type = {kind: int(n) for kind, n in conn.execute(query)}
            hashing = int(conn.execute(unhashed).scalar_one())
        yield GaugeMetricFamily(
            "imageserver_image_total", "Photos in the index", value=by_type.get("photo", 0)
        )
        yield GaugeMetricFamily(
            "imageserver_video_total", "Videos in the index", value=by_type.get("video", 0)
        )
        backlog = GaugeMetricFamily(
            "imageapi_backlog_pending", "Files a queue still has to process", labels=["queue"]
        )
        jobs = GaugeMetricFamily(
            "imageapi_jobs", "Files in each state of a plugin's queue", labels=["queue", "state"]
        )
        backlog.add_metric(["hash"], hashing)
        for queue, states in sorted(self.kernel.hooks.job_counts().items()):
            backlog.add_metric([queue], states.get("pending", 0))
            for state, n in sorted(states.items()):
                jobs.add_metric([queue, state], n)
        yield backlog
        yield jobs


class _Global(Collector):
    """The process-wide registry (Litestar's request metrics), served beside ours."""

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()


class Metrics:
    """This kernel's registry, its hook observer and its listener."""

    def __init__(self, kernel: Kernel) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(IndexCollector(kernel))
        self.registry.register(_Global())
        self.hook_seconds = Histogram(
            "imageapi_hook_duration_seconds",
            "Time spent in one plugin's implementation of a hook",
            ["plugin", "hook"],
            registry=self.registry,
        )
        self.hook_failures = Counter(
            "imageapi_hook_failures",
            "Hook calls that raised or timed out, by plugin and hook",
            ["plugin", "hook"],
            registry=self.registry,
        )
        self.server: Any = None
        self.address: tuple[str, int] | None = None

    @contextlib.contextmanager
    def observe(self, plugin: str, hook: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except BaseException:
            self.hook_failures.labels(plugin, hook).inc()
            raise
        finally:
            self.hook_seconds.labels(plugin, hook).observe(time.perf_counter() - started)

    def listen(self, host: str, port: int) -> tuple[str, int]:
        """Serve ``/metrics`` on its own listener (a thread); returns the bound address."""
        self.server, _thread = start_http_server(port, host, registry=self.registry)
        bound_host, bound_port = self.server.server_address[:2]
        self.address = (str(bound_host), int(bound_port))
        return self.address

    def close(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()
