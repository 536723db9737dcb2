"""``kill -9`` of a process in the middle of the backlog loses nothing and sends nothing
twice that was already stored: the database is the queue, and rows are written once
Apollo has answered. On PostgreSQL the dead process's claims hold its photos until their
lease expires (``LEASE`` seconds here); then the next process takes them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faces_support import NO_RETRY_WAIT, drain, photo
from sqlalchemy import select

from kernel.tables import files
from kernel.testing import fresh_database_url, harness

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[3]
PHOTOS = 40
LEASE = 1.0


def stored_uploads(h) -> tuple[dict[str, int], set[str]]:
    """(rows per content hash, SHA prefixes of the uploads whose answers were stored:
    the fake writes them into ``model_version``)."""
    from plugins.faces.tables import face_detections as fd

    with h.kernel.db.read() as conn:
        rows = conn.execute(select(fd.c.content_hash, fd.c.model_version)).all()
    per_hash: dict[str, int] = {}
    for row in rows:
        per_hash[row.content_hash] = per_hash.get(row.content_hash, 0) + 1
    return per_hash, {r.model_version.split("-", 1)[1] for r in rows if r.model_version}


def test_kill_9_mid_backlog(tmp_path, library, apollo):
    for n in range(PHOTOS):
        photo(library / f"p{n:02}.jpg", (60 + n * 4, 100, 220 - n * 3))
    apollo.delay = 0.05
    with fresh_database_url(tmp_path) as url:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": url,
            "BASE_PATH": str(library),
            "IMAGEAPI_DATA_DIR": str(tmp_path / "data"),
            "IMAGEAPI_CONFIG": str(tmp_path / "none.toml"),
            "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
            "APOLLO_FACE_API_BASE_URL": apollo.url,
            "FACE_BACKLOG_MAX_PER_TICK": "4",
            "FACE_DETECT_CONCURRENCY": "2",
        }
        (tmp_path / "none.toml").write_text(f"[kernel]\nlease_seconds = {LEASE}\n")
        worker = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("crash_worker.py"))],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            while len(apollo.detect_calls()) < PHOTOS // 3:
                assert worker.poll() is None, "the worker ended on its own"
                time.sleep(0.01)
            os.kill(worker.pid, signal.SIGKILL)
        finally:
            worker.kill()
            worker.wait()
        sent_before = set(apollo.detect_calls())
        if url.startswith("postgresql"):
            time.sleep(LEASE + 0.5)  # the dead process's claims expire

        with harness(tmp_path / "after", ["faces"], library=library, database_url=url,
                     env={"APOLLO_FACE_API_BASE_URL": apollo.url},
                     plugins_toml=NO_RETRY_WAIT) as h:  # fmt: skip
            per_hash, stored = stored_uploads(h)
            assert 0 < len(per_hash) < PHOTOS  # killed mid-backlog
            first_calls = len(apollo.detect_calls())
            h.scan()
            while drain(h):
                pass
            later = apollo.detect_calls()[first_calls:]
            per_hash, _ = stored_uploads(h)
            with h.kernel.db.read() as conn:
                hashes = set(conn.execute(select(files.c.content_hash)).scalars())
    assert set(per_hash) == hashes  # nothing lost: every photo has its row
    assert all(count == 1 for count in per_hash.values())  # one face each, none twice
    assert not {sha for sha in later if sha[:12] in stored}  # nothing stored was sent again
    assert len(later) == PHOTOS - len(stored)
    assert sent_before  # the first process really was talking to Apollo
