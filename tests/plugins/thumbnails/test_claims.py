"""Two processes draining one thumbnails backlog over PostgreSQL share it.

Each harness is a kernel of its own (its own claims owner, pool and event loop) over the
same database and library, as two ``imageapi worker`` processes are.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from kernel.testing import TEST_DATABASE_ENV, fresh_database_url, harness, make_jpeg

pytestmark = [
    pytest.mark.db,
    pytest.mark.skipif(not os.environ.get(TEST_DATABASE_ENV), reason="claims need PostgreSQL"),
]
PHOTOS = 24
TOML = "[plugins.thumbnails]\nworkers = 1\n"


def test_two_drains_split_the_backlog_and_render_each_file_once(
    tmp_path: Path, library: Path
) -> None:
    for n in range(PHOTOS):
        make_jpeg(library / f"p{n:02d}.jpg", size=(2400, 1600), color=(n * 10, 90, 30))
    env = {"THUMBNAILS": str(tmp_path / "thumbs"), "GIFS_DIRECTORY": str(tmp_path / "gifs")}
    with fresh_database_url(tmp_path) as url:
        with harness(tmp_path / "index", (), library=library, database_url=url) as h:
            h.scan()  # indexed and hashed, no thumbnails plugin yet: the backlog is whole
        drained: dict[str, int] = {}
        with (
            harness(
                tmp_path / "a", ("thumbnails",), library=library, database_url=url,
                plugins_toml=TOML, env=env,
            ) as a,
            harness(
                tmp_path / "b", ("thumbnails",), library=library, database_url=url,
                plugins_toml=TOML, env=env,
            ) as b,
        ):  # fmt: skip

            def drain(name: str, h: object) -> None:
                done = h.run(h.kernel.hooks.drain_backlog, 500)  # type: ignore[attr-defined]
                drained[name] = done["thumbnails"]

            threads = [threading.Thread(target=drain, args=item) for item in (("a", a), ("b", b))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        engine = create_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT count(*), sum(attempts) FROM thumbnails WHERE status = 'done'")
            ).one()
            leases = conn.execute(text("SELECT count(*) FROM claims")).scalar_one()
        engine.dispose()
    # one drain's limit (500) covers the whole backlog, yet it claims only what its pool
    # can start soon: the other process gets its share instead of waiting
    assert drained["a"] > 0 and drained["b"] > 0, drained
    assert drained["a"] + drained["b"] == PHOTOS
    assert tuple(rows) == (PHOTOS, PHOTOS)  # every file rendered once
    assert leases == 0
