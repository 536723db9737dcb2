"""Backlogs are kept to the configured libraries.

A library taken out of the configuration keeps its rows (put it back and its tags are
there). Those rows are nobody's work: before, a plugin's backlog query returned them
first (lowest ids), ``FileIndex.refs`` dropped them, and on SQLite every tick's limit was
filled with them so configured files behind them were never reached; on PostgreSQL they
were claimed and never released.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from kernel.index import FILE_COLUMNS, split_rel_path
from kernel.tables import claims, files
from kernel.testing import harness, make_jpeg

pytestmark = pytest.mark.db


def test_rows_of_an_unconfigured_library_are_nobodys_work(tmp_path: Path) -> None:
    with harness(tmp_path, ()) as h:
        now = time.time()
        gone = []
        for n in range(5):  # a library (id 7) no longer in the configuration, older rows
            parent, name = split_rel_path(f"old/p{n}.jpg")
            gone.append(
                {
                    "library_id": 7, "rel_path": f"old/p{n}.jpg", "parent_dir": parent,
                    "name": name, "size": 10, "mtime_ns": n, "media_type": "photo",
                    "status": "present", "content_hash": f"{n:064x}", "discovered_at": now,
                    "updated_at": now,
                }
            )  # fmt: skip
        with h.kernel.db.write() as conn:
            conn.execute(files.insert(), gone)
        for n in range(3):
            make_jpeg(h.library / f"new{n}.jpg")
        h.scan()
        backlog = (
            select(*FILE_COLUMNS)
            .where(files.c.status == "present", files.c.content_hash.isnot(None))
            .order_by(files.c.id)
        )

        rows = h.kernel.claims.take("test", backlog, 3)

        assert sorted(row.rel_path for row in rows) == ["new0.jpg", "new1.jpg", "new2.jpg"]
        assert {row.library_id for row in rows} == {1}
        with h.kernel.db.read() as conn:
            claimed = {row.key for row in conn.execute(select(claims.c.key))}
        assert claimed <= {row.id for row in rows}  # nothing of library 7 leased (PostgreSQL)
        h.kernel.claims.release("test", [row.id for row in rows])
