"""The one model a server answers with: a `Geolocator` loaded once, shared by every request.

Requests call `predict` from the prediction threads at once: the Geolocator keeps no per-request
state, and onnxruntime's and torch's forward passes are safe to call concurrently. Uploads are
bytes, named `photo 1`, `photo 2`… in the answer: a client's file name is never a path here.
"""

from __future__ import annotations

from pathlib import Path

from geolocate.serve.card import build_card, error_map_path, model_folder


class ServedModel:
    """A loaded model, its card, and the `predict` the request threads call."""

    def __init__(self, geolocator, card: dict, error_map: Path | None) -> None:
        self.geolocator, self.card, self.error_map = geolocator, card, error_map

    @classmethod
    def load(cls, ref: str, paths=None, engine: str = "auto", device: str = "cpu") -> "ServedModel":
        """Open `ref` (a run, a release, "best" or a checkpoint file; single-photo or four-view)."""
        from geolocate.api import Geolocator

        located = Geolocator.locate(ref, paths=paths)
        geolocator = Geolocator.open(located, engine=engine, device=device)
        where = located[1]
        about = geolocator.model
        folder = model_folder(where if where.is_dir() else where.parent, about.get("run_id"), getattr(paths, "runs", None))
        return cls(geolocator, build_card(about, folder, views=geolocator.four_view), error_map_path(folder))

    @property
    def views(self) -> bool:
        """True when the model takes the four views of one place instead of photos."""
        return self.geolocator.four_view

    def predict(self, photos: list[bytes] | dict[str, bytes], top: int) -> dict:
        """`predict --json`'s document: photos one by one, or one place from its views ({"north": bytes, …})."""
        if isinstance(photos, dict):
            batch = self.geolocator.predict_many([photos], top=top, names=["location 1"])
        else:
            batch = self.geolocator.predict_many(photos, top=top, names=[f"photo {i + 1}" for i in range(len(photos))])
        return batch.to_dict()
