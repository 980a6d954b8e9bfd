"""The one model a server answers with: loaded once, shared by every request (thread-safe).

INTERIM adapter until `geolocate.Geolocator` (branch predict-api) lands: it wraps the existing
single-view predictor and decodes uploaded bytes itself. Swap `load` and `_predict_one` for
`Geolocator.load(ref)` / `g.predict(data, top=k).to_dict()`; the server only needs `predict`,
`card`, `error_map` and `views` below.
"""

from __future__ import annotations

from pathlib import Path

from geolocate.errors import UserError
from geolocate.serve.card import build_card, error_map_path, model_folder


class ServedModel:
    """A loaded model, its card, and one `predict` the request threads call."""

    def __init__(self, predictor, card: dict, error_map: Path | None, views: bool = False) -> None:
        self.predictor, self.card, self.error_map, self.views = predictor, card, error_map, views

    @classmethod
    def load(cls, ref: str, paths) -> "ServedModel":
        from geolocate.artifacts.resolve import resolve_checkpoint
        from geolocate.inference.predictor import load_predictor
        from geolocate.inference.provenance import describe_model

        stem = resolve_checkpoint(ref, paths)
        predictor = load_predictor(stem, paths)
        if getattr(predictor, "views", False):
            raise UserError("serve answers single-photo models only until the Python API lands")
        about = describe_model(predictor.meta, predictor.engine)
        folder = model_folder(stem, about.get("run_id"), getattr(paths, "runs", None))
        return cls(predictor, build_card(about, folder, views=False), error_map_path(folder))

    @property
    def about(self) -> dict:
        return {k: v for k, v in self.card.items() if k not in ("test", "baselines", "trained_on", "gates_pass", "error_map")}

    def predict(self, photos: list[bytes], top: int) -> dict:
        """`predict --json`'s document for in-memory photos (`photo 1`, `photo 2`…)."""
        rows = [self._predict_one(data, f"photo {i + 1}", top) for i, data in enumerate(photos)]
        return {"model": self.about, "predictions": rows, "failures": []}

    def _predict_one(self, data: bytes, name: str, top: int) -> dict:
        from geolocate.inference.geojson import _h3_ring

        image, gps = _decode(data, self.predictor.preprocess.resize)
        logits, embeddings = self.predictor._forward(self.predictor.preprocess(image)[None])
        row = self.predictor._rows([Path(name)], logits, embeddings, top, {name: gps})[0]
        for cell in row["top"]:
            cell["polygon"] = _h3_ring(cell["cell_id"])
        return row


def _decode(data: bytes, min_side: int):
    """RGB image (EXIF-rotated, JPEG drafted to `min_side`) and the EXIF GPS of uploaded bytes."""
    from PIL import ImageOps

    from geolocate.data.images import open_photo
    from geolocate.inference.exif import _GPS_IFD, _degrees

    with open_photo(data) as img:
        gps = img.getexif().get_ifd(_GPS_IFD)
        if img.format == "JPEG":
            img.draft("RGB", (min_side, min_side))
        image = ImageOps.exif_transpose(img)
        image = image if image.mode == "RGB" else image.convert("RGB")
    try:
        return image, (_degrees(gps[2], gps.get(1, "N"), "S"), _degrees(gps[4], gps.get(3, "E"), "W"))
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return image, None

