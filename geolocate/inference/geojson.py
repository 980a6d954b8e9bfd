"""`predict --geojson FILE`: each prediction as map features (QGIS, geojson.io, kepler.gl).

Per photo: its top-k H3 cells as polygons with their probabilities, the predicted point, the
credible circle (radius from the sidecar's conformal table) and, when known, the true place.
Every feature carries `photo` and `kind` properties, so one file holds any number of photos and
a map can filter or style by them. Coordinates are GeoJSON's [longitude, latitude] (RFC 7946);
rings are closed (first point repeated last).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from geolocate import atomic
from geolocate.geo import destination

CIRCLE_POINTS = 64


def prediction_features(row: dict) -> list[dict]:
    """The features of one prediction row (as `PhotoPredictor` makes them)."""
    photo = row["file"]
    features = [_cell_feature(photo, c) for c in row["top"]]
    features.append(_point(photo, "prediction", row["lat"], row["lon"], confidence=row["confidence"],
                           radius_km=row.get("radius_km"), position=row.get("position")))
    if row.get("radius_km"):
        features.append(_feature(photo, "credible_circle", _circle(row["lat"], row["lon"], row["radius_km"]),
                                 radius_km=row["radius_km"]))
    if row.get("true_lat") is not None:
        features.append(_point(photo, "truth", row["true_lat"], row["true_lon"], error_km=row.get("error_km")))
    return features


def feature_collection(rows: list[dict], model: dict | None = None) -> dict:
    """One FeatureCollection holding every row's features (and which model answered)."""
    collection = {"type": "FeatureCollection", "features": [f for row in rows for f in prediction_features(row)]}
    if model:
        collection["properties"] = {"model": model}  # foreign member: ignored by viewers, kept for people
    return collection


def write_geojson(path: Path, rows: list[dict], model: dict | None = None) -> None:
    """Write the FeatureCollection of `rows` to `path` atomically."""
    atomic.write_text(path, json.dumps(feature_collection(rows, model), indent=1) + "\n")


def _cell_feature(photo: str, cell: dict) -> dict:
    props = {"rank": cell["rank"], "probability": cell["prob"], "cell_id": cell["cell_id"], "city": cell.get("city")}
    ring = cell["polygon"] if "polygon" in cell else cell_polygon(cell["cell_id"])
    if ring is None:  # a class that is not an H3 cell (a region): its centroid
        return _point(photo, "cell", cell["lat"], cell["lon"], **props)
    return _feature(photo, "cell", {"type": "Polygon", "coordinates": [ring]}, **props)


def cell_polygon(cell_id: str) -> list[list[float]] | None:
    """The closed [lon, lat] ring of an H3 cell; None for a class that is not one (a named region)."""
    import h3

    try:
        if not h3.is_valid_cell(cell_id):
            return None
        boundary = h3.cell_to_boundary(cell_id)  # ((lat, lng), ...), open ring
    except (ValueError, TypeError):
        return None
    ring = [[float(lng), float(lat)] for lat, lng in boundary]
    return ring + ring[:1]


def _circle(lat: float, lon: float, radius_km: float) -> dict:
    bearings = np.linspace(0.0, 360.0, CIRCLE_POINTS, endpoint=False)
    lats, lons = destination(lat, lon, bearings, radius_km)
    ring = [[float(o), float(a)] for a, o in zip(lats, lons)]
    # Counter-clockwise exterior (RFC 7946's right-hand rule): bearings turn clockwise, so reverse.
    ring = ring[::-1]
    return {"type": "Polygon", "coordinates": [ring + ring[:1]]}


def _point(photo: str, kind: str, lat: float, lon: float, **props) -> dict:
    return _feature(photo, kind, {"type": "Point", "coordinates": [float(lon), float(lat)]}, **props)


def _feature(photo: str, kind: str, geometry: dict, **props) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": {"photo": photo, "kind": kind, **props}}
