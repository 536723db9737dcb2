"""The GPS radius search agrees with the haversine formula on thousands of positions,
including around the poles and the antimeridian, where bounding boxes go wrong."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import pytest

from kernel.tables import files
from kernel.testing import harness
from plugins.exif import store
from plugins.exif.geo import distance_km
from plugins.exif.model import ExifData
from plugins.exif.tables import image_exif

pytestmark = pytest.mark.db


def random_points(rng: random.Random, count: int) -> list[tuple[float, float]]:
    points = []
    for n in range(count):
        if n % 4 == 0:  # near a pole
            lat, lon = rng.choice((1, -1)) * rng.uniform(80, 90), rng.uniform(-180, 180)
        elif n % 4 == 1:  # near the antimeridian
            lat, lon = rng.uniform(-70, 70), rng.choice((1, -1)) * rng.uniform(170, 180)
        else:  # uniform on the sphere
            lat, lon = math.degrees(math.asin(rng.uniform(-1, 1))), rng.uniform(-180, 180)
        points.append((round(lat, 6), round(lon, 6)))
    return points


def test_radius_search_matches_the_great_circle_distance(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    points = random_points(rng, 4000)
    with harness(tmp_path, ["exif"]) as h:
        now = time.time()
        with h.kernel.db.write() as conn:
            conn.execute(
                files.insert(),
                [
                    {"id": n + 1, "library_id": 1, "rel_path": f"p{n:05d}.jpg", "parent_dir": "",
                     "name": f"p{n:05d}.jpg", "size": 1, "mtime_ns": 0, "media_type": "photo",
                     "content_hash": f"{n:064x}", "status": "present", "discovered_at": now,
                     "updated_at": now}
                    for n in range(len(points))
                ],
            )  # fmt: skip
            conn.execute(
                image_exif.insert(),
                [
                    store.row_values(n + 1, f"{n:064x}", ExifData(gps_lat=lat, gps_lon=lon))
                    for n, (lat, lon) in enumerate(points)
                ],
            )
        centers = [(90.0, 0.0), (-90.0, 0.0), (0.0, 180.0), (0.0, -180.0), (85.0, 179.0)]
        centers += [(-88.5, -170.0), (60.0, -179.9), *random_points(rng, 13)]
        checked = 0
        for lat, lon in centers:
            for radius in (5.0, 150.0, 1200.0, 6000.0):
                params = {"gps_lat": lat, "gps_lon": lon, "gps_radius_km": radius}
                response = h.get("/photos", params=params)
                assert response.status_code == 200, response.text
                got = set(response.json()["photos"])
                for n, (plat, plon) in enumerate(points):
                    distance = distance_km(lat, lon, plat, plon)
                    if abs(distance - radius) < 1e-6 * radius:
                        continue  # on the boundary to within rounding: either answer is right
                    assert (f"p{n:05d}.jpg" in got) == (distance < radius), (lat, lon, radius, n)
                checked += len(got)
        assert checked > 2000  # the caps were not all empty
