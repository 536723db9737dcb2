"""A batch names up to 5,000 files: its body may pass the app's 64 KiB body limit."""

from __future__ import annotations

import pytest

from kernel.testing import harness, make_jpeg

pytestmark = pytest.mark.db
FOLDER = "Photos/Family/2019/2019-08 Summer trip to the mountains with grandparents"


def test_a_batch_of_a_thousand_long_paths(tmp_path, library):
    make_jpeg(library / FOLDER / "seed.jpg")
    for n in range(1000):
        (library / FOLDER / f"DSC_{n:05d}.jpg").write_bytes(
            (library / FOLDER / "seed.jpg").read_bytes()
        )
    paths = [f"{FOLDER}/DSC_{n:05d}.jpg" for n in range(1000)]
    with harness(tmp_path, ["tags"]) as h:
        h.scan()
        body = {"paths": paths, "add": ["mountains"]}
        response = h.post("/image/tags/batch", json=body)
        assert response.status_code == 200, response.text  # ~90 KB of JSON
        assert response.json()["added"] == 1000
        huge = h.post("/image/tags/batch", json={"paths": ["x" * 5000] * 1000, "add": ["y"]})
        assert huge.status_code == 413  # 5 MB is beyond any real batch
        assert h.post("/image/tags", json={"path": "x" * 70000, "tag_name": "z"}).status_code == 413
