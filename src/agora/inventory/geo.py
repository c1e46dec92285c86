"""Great-circle geometry for pickup points, on PostgreSQL's built-in ``point`` type (no PostGIS).

A pickup point's ``location`` is ``point(longitude, latitude)`` with a GiST index. A plane of
degrees is not the sphere: the planar nearest neighbours (``<->``) of a buyer at longitude 179.9
miss the shop at -179.9 a few kilometres away, and near a pole a degree of longitude shrinks to
nothing. So the planar index only proposes candidates, and the answer comes from a second,
exact step:

1. the ``k`` planar-nearest points give an upper bound ``d`` on the great-circle distance of the
   true ``k``-th nearest (``k`` real points lie within ``d``);
2. every point within ``d`` lies in the latitude/longitude boxes of ``bounding_boxes`` — boxes
   split at the antimeridian, widened to every longitude when the circle reaches over a pole —
   and the index answers ``location <@ box`` too;
3. those points are ranked by their haversine distance.

The result is exact whatever the planar distortion; the distortion only makes step 2 read more
rows where it is strong (near a pole or the antimeridian).
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.types import UserDefinedType

EARTH_RADIUS_M = 6_371_008.8  # the mean radius (IUGG)
_HALF_TURN = math.pi
_MARGIN_RAD = 1e-9  # keeps points on a box's edge inside despite rounding

Box = tuple[float, float, float, float]  # west, south, east, north in degrees


class Point(UserDefinedType[tuple[float, float]]):
    """PostgreSQL's built-in ``point``, as an ``(x, y)`` tuple (here longitude, latitude)."""

    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        """The SQL type name."""
        return "POINT"

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        """asyncpg answers its own ``Point``; the model holds a plain tuple."""

        def process(value: Any) -> tuple[float, float] | None:
            return None if value is None else (float(value[0]), float(value[1]))

        return process


ischema_names["point"] = Point  # so that reflection (and the schema check) knows the type


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance in metres between two (latitude, longitude) in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2
    a = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


def bounding_boxes(lat: float, lon: float, distance_m: float) -> list[Box]:
    """Latitude/longitude boxes that together hold every point within ``distance_m`` of
    (``lat``, ``lon``): one box, or two when the circle crosses the antimeridian.

    The longitude half-width is ``asin(sin(r) / cos(lat))`` (the tangent meridians of the
    circle); when the circle reaches over a pole every longitude is in.
    """
    angle = distance_m / EARTH_RADIUS_M + _MARGIN_RAD
    phi, lam = math.radians(lat), math.radians(lon)
    south, north = phi - angle, phi + angle
    if angle >= _HALF_TURN or north >= _HALF_TURN / 2 or south <= -_HALF_TURN / 2:
        return [(-180.0, max(-90.0, math.degrees(south)), 180.0, min(90.0, math.degrees(north)))]
    half_width = math.asin(min(1.0, math.sin(angle) / math.cos(phi)))
    west, east = lam - half_width, lam + half_width
    degrees = (math.degrees(south), math.degrees(north))
    if west < -_HALF_TURN:
        return [
            (math.degrees(west) + 360.0, degrees[0], 180.0, degrees[1]),
            (-180.0, degrees[0], math.degrees(east), degrees[1]),
        ]
    if east > _HALF_TURN:
        return [
            (math.degrees(west), degrees[0], 180.0, degrees[1]),
            (-180.0, degrees[0], math.degrees(east) - 360.0, degrees[1]),
        ]
    return [(math.degrees(west), degrees[0], math.degrees(east), degrees[1])]
