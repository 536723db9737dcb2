"""The GPS radius search as plain SQL arithmetic, identical on SQLite and PostgreSQL.

SQLite has no trigonometric functions unless they were compiled in, and the kernel's
connections register none, so the haversine formula cannot run in SQL portably. It
does not have to: every position is also stored as a point on the unit sphere
(``gps_x, gps_y, gps_z``, computed in Python when the row is written), and for two
unit vectors ``p`` and ``c`` the great-circle distance is ``R * acos(p · c)``. Since
``acos`` decreases monotonically, "within ``r`` km of ``c``" is exactly

    gps_x * cx + gps_y * cy + gps_z * cz >= cos(r / R)

with ``cx, cy, cz`` and ``cos(r / R)`` computed here: only ``*``, ``+`` and ``>=`` in
SQL, and no approximation beyond the spherical earth itself (the mean radius below;
the ellipsoid differs by up to 0.5 %). Doubles keep the test exact to well under a
metre even for tiny radii.

In front of it goes a bounding box on ``(gps_lat, gps_lon)`` so the index, not a scan,
finds the candidates. The box is the exact one for a spherical cap: latitude
``lat ± r/R``; longitude ``lon ± asin(sin(r/R) / cos(lat))``, split in two where it
crosses the antimeridian, and dropped (all longitudes) when the cap contains a pole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius
HALF_CIRCUMFERENCE_KM = math.pi * EARTH_RADIUS_KM
_PAD = 1e-9  # degrees: keeps a point lying exactly on the box edge inside it


def unit_vector(lat: float, lon: float) -> tuple[float, float, float]:
    """The point on the unit sphere at (lat, lon) in degrees."""
    phi, lam = math.radians(lat), math.radians(lon)
    return math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance by the haversine formula (for tests and tools)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlam = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class Cap:
    """A spherical cap (centre and radius) and the SQL-ready numbers that describe it."""

    lat_min: float
    lat_max: float
    lon_ranges: tuple[tuple[float, float], ...]  # () = every longitude
    center: tuple[float, float, float]
    min_dot: float


def cap(lat: float, lon: float, radius_km: float) -> Cap:
    """The bounding box and dot-product threshold of a radius search."""
    delta = radius_km / EARTH_RADIUS_KM  # angular radius, radians
    center = unit_vector(lat, lon)
    if delta >= math.pi:  # the whole sphere
        return Cap(-90.0, 90.0, (), center, -2.0)
    min_dot = math.cos(delta)
    reach = math.degrees(delta)
    lat_min, lat_max = lat - reach - _PAD, lat + reach + _PAD
    if lat_max >= 90.0 or lat_min <= -90.0:  # a pole lies inside: any longitude
        return Cap(max(lat_min, -90.0), min(lat_max, 90.0), (), center, min_dot)
    spread = math.degrees(math.asin(min(1.0, math.sin(delta) / math.cos(math.radians(lat)))))
    west, east = lon - spread - _PAD, lon + spread + _PAD
    if east - west >= 360.0:
        ranges: tuple[tuple[float, float], ...] = ()
    elif west < -180.0:
        ranges = ((west + 360.0, 180.0), (-180.0, east))
    elif east > 180.0:
        ranges = ((west, 180.0), (-180.0, east - 360.0))
    else:
        ranges = ((west, east),)
    return Cap(lat_min, lat_max, ranges, center, min_dot)
