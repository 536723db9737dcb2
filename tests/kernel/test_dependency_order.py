"""A handler's dependencies (``kernel``, ``user``, a plugin router's ``plugin``) are
resolved one after another. Litestar resolves dependencies of the same depth concurrently
in an anyio task group, a task each: for three lookups that return at once that was 12 %
of the CPU of a ``/image/metadata`` request."""

from __future__ import annotations

from pathlib import Path

from litestar.routes import HTTPRoute

import plugins
from kernel.testing import harness

SHIPPED = sorted(
    p.name for p in Path(plugins.__file__).parent.iterdir() if (p / "__init__.py").is_file()
)


def test_no_route_resolves_two_dependencies_at_once(tmp_path):
    with harness(tmp_path, SHIPPED) as h:
        checked, concurrent = 0, []
        for route in h.client.app.routes:
            if not isinstance(route, HTTPRoute):
                continue
            for handler in route.route_handlers:
                model = handler.create_kwargs_model(path_parameters=route.path_parameters)
                batches = [sorted(d.key for d in batch) for batch in model.dependency_batches]
                checked += bool(batches)
                if any(len(batch) > 1 for batch in batches):
                    concurrent.append((route.path, sorted(handler.http_methods), batches))
        assert checked > 10 and concurrent == []
        assert h.get("/photos").status_code == 200  # the user still reaches the handler
