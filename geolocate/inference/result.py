"""One prediction's answer, and the one way it is written out (`predict --json`, the API, serve).

A `Result` holds the fields of a `predict --json` prediction: the position and how it was placed,
the confidence, the credible radius, the top-k classes (each with its probability and, for H3
cells, its polygon), the truth and the error when one is known, and the model that answered.
Single-photo and four-view models give the same fields; a four-view result also says which photo
filled each compass view.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

# The fields of one prediction, in the order `--json` and `--out` write them.
FIELDS = ("file", "lat", "lon", "position", "confidence", "radius_km", "top", "true_lat", "true_lon", "error_km", "views")


@dataclass
class Failure:
    """An input that could not be predicted (a photo, a location, or one view of it), with a one-line reason."""

    file: str
    reason: str

    def to_dict(self) -> dict:
        return {"file": self.file, "reason": self.reason}


@dataclass
class Result:
    """Where one photo (or one four-view location) was taken, as a model sees it."""

    file: str  # the photo's path as given, the location's id, or `photo N` for in-memory photos
    lat: float
    lon: float
    position: str  # how the point was placed: top1, weighted, retrieval, sniper
    confidence: float  # probability of the top-1 class
    radius_km: float | None  # credible radius (90 %: the sidecar's conformal table); None when unknown
    top: list[dict]  # rank, cell_id, city, lat, lon, prob, polygon ([lon, lat] ring; None for a non-H3 class)
    true_lat: float | None = None
    true_lon: float | None = None
    error_km: float | None = None
    views: dict | None = None  # four-view: compass view → the photo that filled it
    model: dict = field(default_factory=dict, repr=False)  # provenance: `provenance.describe_model`

    @classmethod
    def from_row(cls, row: dict, model: dict) -> "Result":
        return cls(**{k: row.get(k) for k in FIELDS}, model=model)

    def to_dict(self, model: bool = True) -> dict:
        """JSON-ready fields (those of `predict --json`); `model=False` leaves the provenance out (a batch says it once)."""
        out = {k: getattr(self, k) for k in FIELDS if k != "views" or self.views is not None}
        return {**out, "model": self.model} if model else out

    def to_geojson(self) -> dict:
        """A GeoJSON FeatureCollection: top-k cells, the point, the credible circle, the truth."""
        from geolocate.inference.geojson import feature_collection

        return feature_collection([self.to_dict(model=False)], self.model)

    def replace(self, **changes) -> "Result":
        return dataclasses.replace(self, **changes)


def document(results: list[Result], failures: list[Failure], model: dict) -> dict:
    """What `predict --json` prints: the model once, then every prediction and every failure."""
    return {"model": model, "predictions": [r.to_dict(model=False) for r in results], "failures": [f.to_dict() for f in failures]}
