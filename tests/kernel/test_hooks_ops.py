"""The operator-facing hooks: Litestar plugins for the app, queue counts, and the
dispatcher's observers (what metrics and tracing plugins build on)."""

from __future__ import annotations

import contextlib

import pytest
from litestar import get
from litestar.datastructures import ResponseHeader
from litestar.plugins import InitPluginProtocol

from kernel import hookimpl
from kernel.testing import harness, make_jpeg

pytestmark = pytest.mark.db


def test_hook_app_plugins(tmp_path):
    seen = []

    @get("/seen", sync_to_thread=False)
    def seen_route() -> dict[str, bool]:
        return {"seen": True}

    class Header(InitPluginProtocol):
        def on_app_init(self, app_config):
            seen.append(app_config)
            app_config.route_handlers = [*app_config.route_handlers, seen_route]
            app_config.response_headers = [
                *app_config.response_headers,
                ResponseHeader(name="X-Seen", value="yes"),
            ]
            return app_config

    class Plugin:
        @hookimpl
        def app_plugins(self):
            return [Header()]

    with harness(tmp_path, extra_plugins={"p": Plugin()}) as h:
        assert len(seen) == 1  # applied once, while the app was built
        response = h.get("/seen")  # a handler of this app alone (handlers cache headers)
        assert response.json() == {"seen": True} and response.headers["X-Seen"] == "yes"


def test_hook_job_counts(tmp_path):
    class Queue:
        @hookimpl
        def job_counts(self, kernel):
            return {"q1": {"pending": 2}, "q2": {"done": 5, "pending": 0}}

    class Other:
        @hookimpl
        def job_counts(self):
            return None

    with harness(tmp_path, extra_plugins={"a": Queue(), "b": Other()}) as h:
        assert h.kernel.hooks.job_counts() == {
            "q1": {"pending": 2},
            "q2": {"done": 5, "pending": 0},
        }


def test_dispatch_observers_wrap_every_awaited_hook_call(tmp_path, library):
    make_jpeg(library / "a.jpg")
    calls: list[tuple[str, str, str]] = []

    @contextlib.contextmanager
    def observe(plugin, hook):
        calls.append(("enter", plugin, hook))
        try:
            yield
        except BaseException:
            calls.append(("raised", plugin, hook))
            raise
        calls.append(("exit", plugin, hook))

    class Broken:
        @hookimpl
        def on_hashed(self, file):
            raise RuntimeError("boom")

    with harness(tmp_path, extra_plugins={"broken": Broken()}) as h:
        h.kernel.dispatcher.observers.append(observe)
        h.scan()
    assert ("raised", "broken", "on_hashed") in calls  # and isolation still holds
    assert calls.count(("enter", "broken", "on_hashed")) == 1
