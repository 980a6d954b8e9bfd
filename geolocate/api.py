"""The Python API: load a model once, ask it where photos were taken. Every front end calls this.

    from geolocate import Geolocator
    g = Geolocator.load("releases/v1")      # a run, a release, "best" or a checkpoint file
    r = g.predict("photo.jpg", top=5)       # also bytes, a PIL image or a numpy array
    r.lat, r.lon, r.radius_km, r.top, r.model
    r.to_geojson()

A four-view (scout-sniper) model takes a location instead of a photo: a dict of up to four views,
by compass direction (`{"north": …, "east": …}`) or by face with the vehicle's heading
(`{"front": …, "right": …, "back": …, "left": …, "azimuth": 130}`), or a list in N, E, S, W order.
With an exported ONNX graph, a single-photo model runs on onnxruntime and torch is never imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from geolocate.errors import UserError
from geolocate.inference.result import Failure, Result, document


@dataclass
class Batch:
    """The answers to many inputs: one `Result` per readable input, one `Failure` per other."""

    results: list[Result]
    failures: list[Failure] = field(default_factory=list)
    model: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """What `predict --json` prints."""
        return document(self.results, self.failures, self.model)

    def to_geojson(self) -> dict:
        from geolocate.inference.geojson import feature_collection

        return feature_collection([r.to_dict(model=False) for r in self.results], self.model)


class Geolocator:
    """A model loaded once (single-photo or four-view), predicting as many times as asked."""

    def __init__(self, predictor) -> None:
        self.predictor = predictor
        self.model: dict = predictor.describe()  # provenance: run, profile, engine, area, classes

    @classmethod
    def load(cls, ref: str | Path = "best", *, engine: str = "auto", device: str = "cpu", paths=None,
             four_view: bool | None = None) -> "Geolocator":
        """Open the model `ref` names: "best", a run directory or id, a release directory or tag, or a checkpoint file.

        Args:
            engine: auto (the ONNX graph when the model has one, else torch), onnx or torch.
            device: auto, cpu, cuda, cuda:N or mps (torch only).
            paths: the project's `ProjectPaths` (default: the default layout under the current directory).
            four_view: True to take "best" as the four-view model (`models/scout-sniper/`).

        Raises:
            UserError: nothing usable there, saying how to make one.
        """
        paths = paths or _default_paths()
        return cls.open(cls.locate(ref, paths=paths, four_view=four_view), engine=engine, device=device, paths=paths)

    @staticmethod
    def locate(ref: str | Path = "best", *, paths=None, four_view: bool | None = None) -> tuple[str, Path]:
        """(system, files) of the model `ref` names, resolved once; nothing is loaded yet."""
        from geolocate.systems import locate_model

        return locate_model(ref, paths or _default_paths(), four_view)

    @classmethod
    def open(cls, located: tuple[str, Path], *, engine: str = "auto", device: str = "cpu", paths=None) -> "Geolocator":
        """Load a model `locate` found (`paths`: where the runs are, for `models/best`'s exported graph)."""
        from geolocate.systems import load_predictor

        return cls(load_predictor(located, engine, device, paths or _default_paths()))

    @property
    def four_view(self) -> bool:
        """True when the model takes four views of a location rather than one photo."""
        return self.predictor.four_view

    @property
    def engine(self) -> str:
        return self.predictor.engine

    def predict(self, source: Any, top: int = 5, truth: tuple[float, float] | None = None) -> Result:
        """Where `source` was taken; `truth` (lat, lon) adds the error in km (else the photo's EXIF GPS, when it has one).

        Raises:
            UserError: the photo (or every view of the location) cannot be read, in one line.
        """
        batch = self.predict_many([source], top=top, truths=[truth])
        if not batch.results:
            raise UserError(batch.failures[0].reason if batch.failures else "nothing to predict")
        return batch.results[0]

    def predict_many(self, sources: Sequence[Any], top: int = 5, batch_size: int = 32,
                     truths: Sequence[tuple[float, float] | None] | None = None,
                     names: Sequence[str] | None = None) -> Batch:
        """Predict every input; unreadable ones become `Failure`s (with names: `names`, else paths or positions)."""
        if top < 1:
            raise UserError(f"top must be at least 1, got {top}")
        rows, failures = self.predictor.predict_items(list(sources), top, batch_size, truths, names)
        return Batch([Result.from_row(row, self.model) for row in rows], failures, self.model)


def _default_paths():
    from geolocate.config import PathsConfig
    from geolocate.paths import ProjectPaths

    return ProjectPaths.from_config(PathsConfig())
