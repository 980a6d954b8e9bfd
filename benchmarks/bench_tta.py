"""Does test-time augmentation (geolocate/data/tta.py) help k-NN on frozen features of real photos?

    python benchmarks/bench_tta.py        # writes benchmarks/results/tta.md (a few minutes on a CPU)

For each real set in ../shared/real-photos, every photo is embedded by EfficientNet-Lite0 (the
offline ImageNet weights) as 1 view (the eval centre crop), 2 (+ its mirror) and 6 (centre, left and
right crops, each mirrored), the views' embeddings averaged. Each photo is then placed by its
nearest other photos (cosine), never from its own group (its Cap-Ferret sequence; each osv5m photo
is its own group): 1-NN takes the neighbour's position, 5-NN the medoid of five (the neighbour
closest to the others, so world-wide answers never average across an ocean).
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
REAL_PHOTOS = Path(os.environ.get("GEOLOCATE_REAL_PHOTOS", REPO.parent / "shared" / "real-photos"))
OUT = REPO / "benchmarks" / "results" / "tta.md"
VIEWS = (1, 2, 6)


def photo_sets() -> dict[str, list[dict]]:
    """{set: [{file, lat, lon, group}]} for the sets present."""
    sets = {}
    osv = REAL_PHOTOS / "osv5m" / "photos.csv"
    if osv.is_file():
        sets["osv5m (121 photos, world)"] = [{"file": osv.parent / r["file"], "lat": float(r["lat"]), "lon": float(r["lon"]),
                                               "group": r["image_id"]} for r in csv.DictReader(osv.open())]
    cap = REAL_PHOTOS / "panoramax-capferret" / "locations.csv"
    if cap.is_file():
        sets["Cap-Ferret (400 faces, 48 sequences)"] = [
            {"file": cap.parent / r[face], "lat": float(r["lat"]), "lon": float(r["lon"]), "group": r["group"]}
            for r in csv.DictReader(cap.open()) for face in ("front", "back", "left", "right")]
    return sets


def embed(rows: list[dict]) -> dict[int, np.ndarray]:
    """{views: [N, D] L2-normalised embeddings averaged over that many views}."""
    import torch
    from PIL import Image

    from geolocate.data.tta import tta_views
    from geolocate.inference.preprocess import Preprocess, _shorter_side_to
    from geolocate.models import create_model

    model = create_model("efficientnet_lite0", num_classes=2, pretrained=True).eval()
    pre = Preprocess({k: list(v) if isinstance(v, tuple) else v for k, v in model.data_config.items()})
    out: dict[int, list] = {v: [] for v in VIEWS}
    with torch.no_grad():
        for row in rows:
            img = Image.open(row["file"]).convert("RGB")
            pixels = np.asarray(img.resize(_shorter_side_to(img.size, pre.resize), pre.resample), dtype=np.float32)
            uncropped = (pixels.transpose(2, 0, 1) / np.float32(255.0) - pre.mean) / pre.std
            features = model.forward_features(torch.from_numpy(tta_views(uncropped, pre.size, crops=3))).numpy()
            for v in VIEWS:
                out[v].append(features[:v].mean(0))
    return {v: np.stack(e) / np.linalg.norm(np.stack(e), axis=1, keepdims=True) for v, e in out.items()}


def knn_errors(emb: np.ndarray, rows: list[dict], k: int) -> np.ndarray:
    """Leave-one-group-out k-NN error in km of every photo."""
    from geolocate.geo import haversine_km

    lat, lon = np.array([r["lat"] for r in rows]), np.array([r["lon"] for r in rows])
    group = np.array([r["group"] for r in rows])
    sims = emb @ emb.T
    errors = []
    for i in range(len(rows)):
        nn = np.argsort(-np.where(group == group[i], -np.inf, sims[i]), kind="stable")[:k]
        spread = haversine_km(lat[nn][:, None], lon[nn][:, None], lat[nn][None, :], lon[nn][None, :]).sum(1)
        best = nn[int(np.argmin(spread))]
        errors.append(float(haversine_km(lat[i], lon[i], lat[best], lon[best])))
    return np.array(errors)


def main() -> None:
    lines = ["# TTA on frozen features (benchmarks/bench_tta.py)", "",
             "Leave-one-group-out k-NN on EfficientNet-Lite0 embeddings, km (median / p90).", "",
             "| set | k | 1 view | 2 views (+ mirror) | 6 views (3 crops × mirror) |", "| --- | --- | --- | --- | --- |"]
    for name, rows in photo_sets().items():
        embeddings = embed(rows)
        for k in (1, 5):
            cells = [knn_errors(embeddings[v], rows, k) for v in VIEWS]
            lines.append(f"| {name} | {k} | " + " | ".join(f"{np.median(e):,.2f} / {np.percentile(e, 90):,.2f}" for e in cells) + " |")
            print(lines[-1], flush=True)
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
