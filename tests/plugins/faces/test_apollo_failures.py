"""Every way Apollo can fail, over real HTTP: transient failures store nothing and are
retried after a backoff; refusals and broken answers store a ``failed`` marker with the
reason; nothing is followed, nothing unbounded is read."""

from __future__ import annotations

import resource

import pytest
from faces_support import closed_port_url, drain, faces_app, faces_of, photo
from fake_apollo import FakeApollo

pytestmark = pytest.mark.db

RED = (230, 40, 40)
WAIT_LONG = "[plugins.faces]\nretry_base_seconds = 3600\n"


def test_apollo_down_then_up(tmp_path, library):
    photo(library / "a.jpg", RED)
    url = closed_port_url()
    with faces_app(tmp_path, url) as h:
        h.scan()
        assert drain(h) == 0
        assert faces_of(h, "a.jpg")["status"] == "pending"  # no marker row
        fake = FakeApollo(int(url.rsplit(":", 1)[1])).start()
        try:
            assert drain(h) == 1
            assert faces_of(h, "a.jpg")["status"] == "detected"
        finally:
            fake.stop()


@pytest.mark.parametrize("mode", ["slow", "500"])
def test_transient_failures_store_nothing_and_retry(tmp_path, library, apollo, mode):
    photo(library / "a.jpg", RED)
    apollo.mode, apollo.delay = mode, (1.5 if mode == "slow" else 0)
    with faces_app(tmp_path, apollo.url, env={"FACE_DETECT_TIMEOUT_SEC": "0.3"}) as h:
        h.scan()
        drain(h)
        assert faces_of(h, "a.jpg")["status"] == "pending"
        assert len(apollo.detect_calls()) >= 1
        apollo.mode, apollo.delay = "ok", 0
        drain(h)
        assert faces_of(h, "a.jpg")["status"] == "detected"


def test_a_failing_photo_waits_for_its_backoff(tmp_path, library, apollo):
    photo(library / "a.jpg", RED)
    apollo.mode = "500"
    with faces_app(tmp_path, apollo.url, plugins_toml=WAIT_LONG) as h:
        h.scan()
        drain(h)
        calls = len(apollo.detect_calls())
        assert calls == 1
        drain(h)
        drain(h)
        assert len(apollo.detect_calls()) == calls  # not before its retry time


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("400", "HTTP 400: not an image"),
        ("redirect", "redirect"),
        ("malformed", "malformed"),
        ("wrong_length", "not 512"),
        ("nan", "malformed"),
        ("huge", "cap"),
        ("huge_declared", "cap"),
    ],
)
def test_refusals_and_broken_answers_leave_a_failed_marker(tmp_path, library, apollo, mode, reason):
    photo(library / "a.jpg", RED)
    apollo.mode = mode
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with faces_app(tmp_path, apollo.url) as h:
        h.scan()
        drain(h)
        state = faces_of(h, "a.jpg")
        assert state["status"] == "failed" and reason in state["error"], state
        assert state["faces"] == []
        drain(h)
        assert len(apollo.detect_calls()) == 1  # one call: not retried, no redirect followed
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 256 * 1024  # a 1 GiB answer is never held


def test_manual_face_when_embed_fails(tmp_path, library, apollo):
    photo(library / "a.jpg", RED, size=(100, 100))
    with faces_app(tmp_path, apollo.url) as h:
        h.scan()
        drain(h)
        apollo.mode = "500"
        body = {"path": "a.jpg", "bbox": [0.1, 0.1, 0.3, 0.3]}
        response = h.post("/image/faces", json=body)
        assert response.status_code == 502 and "Apollo" in response.json()["detail"]
        forced = h.post("/image/faces", json={**body, "force": True})
        assert forced.status_code == 502  # force covers "no face", not a broken Apollo
        rerun = h.post("/image/faces/rerun", json={"path": "a.jpg"})
        assert rerun.status_code == 502
        assert len(faces_of(h, "a.jpg")["faces"]) == 1  # the failed rerun changed nothing
