"""Face detection on several ``imageapi worker`` processes over one PostgreSQL: photos are
claimed, not only selected, so no photo goes to Apollo twice while its claimer lives, and
a killed worker's photos are detected by the other once their lease has expired.

Real worker processes (each with a data directory of its own, as on separate machines)
share the library and the database; the fake Apollo of the faces tests runs in this
process and records every upload. Claims key by the first file of a content (see the
faces README), so a photo present in two libraries is one claim and one call. Runs only
with ``IMAGEAPI_TEST_DATABASE_URL`` (CI's PostgreSQL leg, ``-m db``).
"""

from __future__ import annotations

import collections
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.testing import TEST_DATABASE_ENV, fresh_database_url

sys.path.insert(0, str(Path(__file__).parent))  # the shared installation helper
from installation import ROOT, Installation

pytestmark = [
    pytest.mark.db,
    pytest.mark.requires_plugins("faces"),
    pytest.mark.skipif(not os.environ.get(TEST_DATABASE_ENV), reason="scale-out needs PostgreSQL"),
]
FACES_TESTS = ROOT / "tests" / "plugins" / "faces"
PHOTOS, COPIES = 60, 20  # contents; the first COPIES are also in the second library
LEASE = 2.0
TOML = """
[kernel]
lease_seconds = {lease}
heartbeat_seconds = 0.5
work_poll_seconds = 0.2
[[kernel.libraries]]
id = 2
name = "second"
path = "{second}"
[plugins.faces]
enabled = true
retry_base_seconds = 0
"""
STORED_LINE = re.compile(r"faces: stored (\S+) detected")


def _faces_tests():
    """The fake Apollo and the photo helper of the faces tests, imported when a test runs."""
    if str(FACES_TESTS) not in sys.path:
        sys.path.insert(0, str(FACES_TESTS))
    import faces_support
    import fake_apollo

    return faces_support, fake_apollo


class Workers(Installation):
    """``imageapi`` processes of one installation, each with its own data directory."""

    def __init__(self, tmp: Path, url: str, apollo_url: str) -> None:
        self.second = tmp / "second"
        self.second.mkdir(parents=True, exist_ok=True)
        super().__init__(tmp, url, TOML.format(lease=LEASE, second=self.second))
        self.apollo_url = apollo_url

    def env(self, name: str, *, apollo: bool = True) -> dict[str, str]:
        env = super().env(name)
        env["FACE_DETECT_CONCURRENCY"] = "2"
        if apollo:
            env["APOLLO_FACE_API_BASE_URL"] = self.apollo_url
        return env

    def start(self, name: str) -> None:  # type: ignore[override]
        super().start(name, "worker", "--only", "scan,hash,faces")

    def stored_by(self, name: str) -> list[str]:
        return STORED_LINE.findall(self.log(name))

    def detected(self) -> int:
        return self.sql("SELECT count(DISTINCT content_hash) FROM face_detections")[0][0]

    def wait_detected(self, count: int, deadline: float = 180.0) -> None:
        end = time.monotonic() + deadline
        while self.detected() < count:
            for name, proc in self.procs.items():
                assert proc.poll() is None or proc.returncode == -signal.SIGKILL, self.log(name)
            assert time.monotonic() < end, f"{self.detected()} of {count} detected"
            time.sleep(0.2)


@pytest.fixture
def apollo():
    fake = _faces_tests()[1].FakeApollo().start()
    yield fake
    fake.stop()


@pytest.fixture
def workers(tmp_path: Path, apollo) -> Iterator[Workers]:
    with fresh_database_url(tmp_path) as url:
        if not url.startswith("postgresql"):
            pytest.skip("scale-out needs PostgreSQL")
        w = Workers(tmp_path, url, apollo.url)
        try:
            yield w
        finally:
            w.close()


def fill(w: Workers) -> None:
    """PHOTOS distinct photos (one face each for the fake), the first COPIES of them also
    in the second library: same content, another file."""
    photo = _faces_tests()[0].photo
    for n in range(PHOTOS):
        path = photo(w.library / f"p{n // 20}" / f"photo{n:03d}.jpg", (40 + n * 3, 200 - n, 90))
        if n < COPIES:
            (w.second / "copies").mkdir(exist_ok=True)
            (w.second / "copies" / path.name).write_bytes(path.read_bytes())


def rows_per_content(w: Workers) -> dict[str, int]:
    return dict(w.sql("SELECT content_hash, count(*) FROM face_detections GROUP BY 1"))


def test_two_workers_detect_every_photo_once(workers: Workers, apollo) -> None:
    """Both workers scan, hash and detect (``on_hashed`` and the backlog, both claimed):
    every content is sent once, the copies in the second library not at all."""
    w = workers
    fill(w)
    apollo.delay = 0.2  # long enough for both workers to be at it
    w.cli("db", "upgrade")
    w.start("w1")
    w.start("w2")
    w.wait_detected(PHOTOS)
    time.sleep(1.0)  # anything sent late would show up now

    calls = collections.Counter(apollo.detect_calls())
    assert len(calls) == PHOTOS and set(calls.values()) == {1}, calls.most_common(3)
    assert w.sql("SELECT count(*) FROM files")[0][0] == PHOTOS + COPIES
    assert set(rows_per_content(w).values()) == {1}  # one face each, none twice
    by_worker = {name: len(w.stored_by(name)) for name in ("w1", "w2")}
    assert sum(by_worker.values()) == PHOTOS and all(by_worker.values()), by_worker
    assert w.sql("SELECT count(*) FROM claims WHERE queue = 'faces'")[0][0] == 0


def test_killed_worker_photos_detected_by_the_other(workers: Workers, apollo) -> None:
    """kill -9 of a worker mid-backlog: its claimed photos wait for the lease, then the
    other worker detects them; only photos the dead worker held can have gone twice."""
    w = workers
    fill(w)
    w.cli("db", "upgrade")
    w.cli(
        "scan", env=w.env("cli", apollo=False)
    )  # hashed, none detected: the whole backlog is waiting
    assert w.detected() == 0
    apollo.delay = 0.3
    w.start("w1")
    w.start("w2")
    victim = w.procs["w1"].pid
    held = f"SELECT key FROM claims WHERE queue = 'faces' AND owner LIKE '%:{victim}:%'"
    end = time.monotonic() + 120
    while not (w.stored_by("w1") and w.stored_by("w2") and w.sql(held)):
        assert time.monotonic() < end, w.log("w1")[-3000:] + w.log("w2")[-3000:]
        time.sleep(0.05)
    w.procs["w1"].send_signal(signal.SIGKILL)
    w.procs["w1"].wait()
    claimed = {key for (key,) in w.sql(held)}  # the dead worker's claims, not expired yet
    assert claimed
    contents = "SELECT content_hash FROM files WHERE id = ANY(:ids)"
    claimed_contents = {h for (h,) in w.sql(contents, ids=list(claimed))}
    w.wait_detected(PHOTOS)
    time.sleep(1.0)

    assert set(rows_per_content(w).values()) == {1}  # nothing lost, nothing stored twice
    calls = collections.Counter(apollo.detect_calls())
    assert len(calls) == PHOTOS and max(calls.values()) <= 2
    twice = {sha[:12] for sha, n in calls.items() if n == 2}
    uploads = dict(w.sql("SELECT content_hash, model_version FROM face_detections"))
    resent = {h for h, version in uploads.items() if version.split("-", 1)[1] in twice}
    assert resent <= claimed_contents  # only what the dead worker was detecting
    assert w.sql("SELECT count(*) FROM claims WHERE queue = 'faces'")[0][0] == 0
