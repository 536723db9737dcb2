"""``/metrics`` scraped over real HTTP on its own listener: request counts by route
template, the index's photos and videos, queues, hook durations and failures; nothing on
the public port; ``METRICS_BIND=off``; one log line per request."""

from __future__ import annotations

import logging

import httpx
import pytest
from litestar import get
from litestar.params import FromPath
from prometheus_client.parser import text_string_to_metric_families

from kernel import hookimpl
from kernel.testing import harness, make_jpeg, make_video

pytestmark = pytest.mark.db
ON_ANY_PORT = {"METRICS_BIND": "127.0.0.1:0"}


@get("/things/{thing_id:int}", sync_to_thread=False)
def thing(thing_id: FromPath[int]) -> dict[str, int]:
    return {"thing": thing_id}


class Fake:
    """A plugin with a route, a queue, and a hook that always fails."""

    @hookimpl
    def routes(self):
        return [thing]

    @hookimpl
    def job_counts(self):
        return {"fake": {"pending": 7, "done": 3}}

    @hookimpl
    def on_hashed(self, file):
        if file.rel_path == "bad.jpg":
            raise RuntimeError("boom")


def scrape(h) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    host, port = h.kernel.plugin("metrics").address
    response = httpx.get(f"http://{host}:{port}/metrics", timeout=30)
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def test_scrape_names_labels_and_counted_requests(tmp_path, library):
    make_jpeg(library / "a.jpg")
    make_jpeg(library / "bad.jpg", color=(1, 2, 3))
    make_video(library / "clip.mp4")
    with harness(tmp_path, ["metrics"], env=ON_ANY_PORT, extra_plugins={"fake": Fake()}) as h:
        h.scan()
        before = scrape(h)
        assert value(before, "imageserver_image_total") == 2
        assert value(before, "imageserver_video_total") == 1
        assert value(before, "imageapi_backlog_pending", queue="hash") == 0
        assert value(before, "imageapi_backlog_pending", queue="fake") == 7
        assert value(before, "imageapi_jobs", queue="fake", state="done") == 3
        hashed = value(before, "imageapi_hook_duration_seconds_count", hook="on_hashed")
        assert hashed == 3
        assert value(before, "imageapi_hook_failures_total", plugin="fake", hook="on_hashed") == 1

        photos = {"path": "/photos", "method": "GET", "status_code": "200"}
        counted = value(before, "imageapi_requests_total", **photos)
        assert h.get("/photos").status_code == 200
        assert h.get("/things/5").status_code == 200
        assert h.get("/things/6").status_code == 200
        assert h.client.get("/photos").status_code == 401  # refused: in the log only
        assert h.get("/photos", params={"sort": "Nope"}).status_code == 400
        after = scrape(h)
        assert value(after, "imageapi_requests_total", **photos) == counted + 1
        assert value(after, "imageapi_requests_total", path="/photos", status_code="400") >= 1
        template = value(after, "imageapi_requests_total", path="/things/{thing_id}")
        assert template >= 2 and value(after, "imageapi_requests_total", path="/things/5") == 0
        assert value(after, "imageapi_request_duration_seconds_count", path="/photos") > 0
        assert h.get("/metrics").status_code == 404  # never on the public port


def test_metrics_bind_off_serves_nothing(tmp_path):
    with harness(tmp_path, ["metrics"], env={"METRICS_BIND": "off"}) as h:
        assert h.kernel.plugin("metrics").address is None
        assert h.kernel.dispatcher.observers == []  # hooks run unobserved
        assert h.get("/photos").status_code == 200


def test_a_bad_metrics_bind_stops_start_up(tmp_path):
    from kernel.config import ConfigError

    with (
        pytest.raises(ConfigError, match="METRICS_BIND"),
        harness(tmp_path, ["metrics"], env={"METRICS_BIND": "8088"}),
    ):
        pass


def test_one_log_line_per_request(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="imageapi.requests")
    with harness(tmp_path, ["metrics"], env={"METRICS_BIND": "off"}) as h:
        h.get("/photos", params={"path": "", "limit": 5})
        h.client.get("/photos")
    lines = [r.getMessage() for r in caplog.records if r.name == "imageapi.requests"]
    assert len(lines) == 2
    assert lines[0].startswith("GET /photos 200 ") and lines[0].endswith(" ms")
    assert lines[1].startswith("GET /photos 401 ")
    assert "limit" not in lines[0]  # the route, never the query string
