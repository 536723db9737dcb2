"""Big pictures wait for each other: the pixels decoded at once stay within the budget,
whatever the number of render threads, and a picture above the budget still renders."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from kernel.testing import harness
from plugins.thumbnails import Plugin

pytestmark = pytest.mark.db


def png(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, "PNG")  # PNG: decoded at full size


def test_big_pictures_render_within_the_pixel_budget(tmp_path: Path, library: Path) -> None:
    for n in range(8):
        png(library / f"big{n}.png", (1000, 1000), (40 * n, 90, 200))  # 1 MP each
    png(library / "huge.png", (2000, 1000), (10, 200, 10))  # 2 MP: above the budget
    toml = "[plugins.thumbnails]\nworkers = 4\nrender_budget_megapixels = 1.5\n"
    with harness(tmp_path, ["thumbnails"], plugins_toml=toml) as h:
        h.scan()
        plugin = h.kernel.plugin("thumbnails")
        assert isinstance(plugin, Plugin)
        budget = plugin.thumbnailer.budget
        for name in [f"big{n}.png" for n in range(8)] + ["huge.png"]:
            response = h.get("/image", params={"path": name, "size": "thumb"})
            assert response.status_code == 200, (name, response.text)
        # Four threads, nine pictures, room for one at a time: never two decoded at once.
        assert budget.peak <= 1_500_000
        assert budget.in_use == 0


def test_small_pictures_share_the_budget(tmp_path: Path, library: Path) -> None:
    for n in range(12):
        png(library / f"p{n}.png", (600, 500), (200, 20 * n, 30))  # 0.3 MP each
    toml = "[plugins.thumbnails]\nworkers = 4\nrender_budget_megapixels = 100\n"
    with harness(tmp_path, ["thumbnails"], plugins_toml=toml) as h:
        h.scan()
        budget = h.kernel.plugin("thumbnails").thumbnailer.budget
        assert all(
            h.get("/image", params={"path": f"p{n}.png", "size": "thumb"}).status_code == 200
            for n in range(12)
        )
        assert 300_000 <= budget.peak <= 100_000_000
