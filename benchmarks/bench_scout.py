"""Benchmark the scout-sniper heads: feature-cache speed-up, mean vs transformer fusion, ensemble
vs each scout, and the sniper's offset read at the true or the predicted region.

    .venv/bin/python benchmarks/bench_scout.py [--workdir DIR] [--photos 1600] [--seeds 3]

1. Feature cache: one epoch of the fusion head through the frozen tiny backbone (decode,
   preprocess, backbone forward for every view, head forward/backward) versus one epoch from
   cached features. Synthetic four-view photos (`geolocate synth`, tiny-scout-sniper profile)
   are rendered into `--workdir` (reused when it already holds them).
2. Fusion and ensemble, on two feature sets: (a) the tiny twins (random weights) on the
   synthetic photos, what the tests run; (b) "appearance" features (`data.synthetic_views`):
   the synthetic world's appearance field seen through four fixed projections plus noise,
   i.e. what a good frozen backbone would extract. Test top-1 and log-loss, median over seeds.
3. Sniper trained with offsets at the true vs the predicted region (appearance features).
Prints markdown tables (medians over seeds) for benchmarks/results/scout.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geolocate.config import TrainConfig, load_config  # noqa: E402
from geolocate.evaluate.calibration import nll  # noqa: E402
from geolocate.train.ensemble import fit_ensemble_weights  # noqa: E402
from geolocate.geo import haversine_km  # noqa: E402
from geolocate.models.multiview import FusionHead  # noqa: E402
from geolocate.paths import ProjectPaths  # noqa: E402
from geolocate.scout.bundle import combine, ensemble_of  # noqa: E402
from geolocate.models.multiview import head_outputs  # noqa: E402
from geolocate.models.sniper import SniperInputs, sniper_positions  # noqa: E402
from geolocate.train.sniper import fit_sniper  # noqa: E402
from geolocate.train.view_heads import fit_fusion_head  # noqa: E402

CFG = TrainConfig(epochs=20, batch_size=32, lr=3e-3)
SNIPER = CFG.model_copy(update={"epochs": 40})  # scout.sniper_epochs


def tiny_data(workdir: Path, photos: int):
    """Synthetic four-view photos, locations and regions under `workdir` (made once)."""
    from geolocate.synth.generate import run_synth
    from geolocate.scout.locations import run_locations
    from geolocate.scout.regions import run_regions

    cfg = load_config(ROOT / "config.toml", "tiny-scout-sniper", [f"synth.n_photos={photos}", f"paths.data='{workdir / 'data'}'"])
    paths = ProjectPaths.from_config(cfg.paths)
    if not paths.data.manifest.exists():
        run_synth(cfg.synth, paths.data)
    run_locations(cfg, paths.data)
    run_regions(cfg, paths.data)
    return cfg, paths


def bench_cache(cfg, paths, runs: int = 3) -> dict:
    """Seconds for one epoch of the fusion head: through the frozen backbone vs from cached features."""
    from geolocate.data.images import load_rgb
    from geolocate.data.transforms import eval_transform
    from geolocate.models.features import FeatureCache
    from geolocate.data.views import split_views, view_files
    from geolocate.scout.regions import location_frame
    from geolocate.scout.context import build_scout

    frame = location_frame(paths.data)
    train = frame.filter(frame["split"] == "train")
    files = view_files(frame, paths.data)
    model = build_scout(cfg, "scout-convnext", int(frame["label"].max()) + 1)
    transform, side = eval_transform(model.data_config), int(model.data_config["input_size"][-1])
    start = time.perf_counter()  # a fresh cache directory: this is the one-off cost of filling it
    rows, feats = FeatureCache(Path(tempfile.mkdtemp(prefix="cache-")), "tiny_convnext", model).features(model, files, 64)
    fill = time.perf_counter() - start
    views = split_views(frame, rows, feats)["train"]
    optimizer = torch.optim.AdamW(model.head.parameters(), lr=1e-3)
    through, cached = [], []
    for _ in range(runs):
        through.append(_epoch_images(model, train, files, transform, side, optimizer, load_rgb))
        cached.append(_epoch_cached(model.head, views, optimizer))
    return {"locations": train.height, "views": int(views.mask.sum()), "fill_s": fill,
            "through_s": statistics.median(through), "cached_s": statistics.median(cached)}


def _epoch_images(model, train, files, transform, side, optimizer, load_rgb) -> float:
    from geolocate.schemas import VIEWS

    start = time.perf_counter()
    model.train()
    for batch in train.iter_slices(CFG.batch_size):
        images, mask = torch.zeros(batch.height, 4, 3, side, side), torch.zeros(batch.height, 4, dtype=torch.bool)
        for i, row in enumerate(batch.iter_rows(named=True)):
            for v, view in enumerate(VIEWS):
                if row[view] in files:
                    images[i, v], mask[i, v] = transform(load_rgb(files[row[view]], side)), True
        loss = torch.nn.functional.cross_entropy(model(images, mask), torch.tensor(batch["label"].to_numpy()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def _epoch_cached(head, views, optimizer) -> float:
    from geolocate.train.fitting import small_ops

    start = time.perf_counter()
    head.train()
    with small_ops():  # as training does: one thread for matrices this small
        for batch in torch.randperm(len(views)).split(CFG.batch_size):
            loss = torch.nn.functional.cross_entropy(head(views.features[batch], views.mask[batch]), views.labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def scouts_on(sets: dict, dims: list[int], n_classes: int, seed: int) -> dict:
    """Test top-1 and log-loss of mean and transformer scouts per feature set, and their ensembles."""
    out, outputs = {}, {}
    for k, data in enumerate(sets):
        for kind in ("mean", "transformer"):
            torch.manual_seed(seed)
            head = FusionHead(dims[k], n_classes, kind=kind, fusion_dim=32, layers=1, heads=2)
            head.load_state_dict(fit_fusion_head(head, data, CFG, seed).state)
            outputs[(k, kind)] = {s: head_outputs(head, v) for s, v in data.items()}
            out[f"scout {k + 1} {kind}"] = _scores(outputs[(k, kind)]["test"][0], data["test"].labels.numpy())
    if len(sets) == 2:
        for kind in ("mean", "transformer"):
            pair = [outputs[(0, kind)], outputs[(1, kind)]]
            w = fit_ensemble_weights([p["val"][0] for p in pair], sets[0]["val"].labels.numpy()).weights
            out[f"ensemble {kind}"] = _scores(ensemble_of([p["test"][0] for p in pair], w), sets[0]["test"].labels.numpy())
    return out


def _scores(logits: np.ndarray, labels: np.ndarray) -> dict:
    return {"top1": float((logits.argmax(1) == labels).mean()), "nll": nll(logits, labels)}


def bench_sniper(seed: int, noise: float) -> dict:
    """Test median km: region centroid vs sniper trained at the true / the predicted region."""
    from geolocate.models.sniper import SniperRegressor
    from geolocate.data.synthetic_views import appearance_views

    sets, centroids = appearance_views(seed=seed, noise=noise)
    torch.manual_seed(seed)
    head = FusionHead(32, len(centroids), kind="transformer", fusion_dim=32, layers=1, heads=2)
    head.load_state_dict(fit_fusion_head(head, sets, CFG, seed).state)
    outs = {s: head_outputs(head, v) for s, v in sets.items()}
    result = {}
    for at in ("true", "predicted"):
        inputs = {s: _sniper_inputs(outs[s], sets[s], centroids, at if s == "train" else "predicted") for s in sets}
        torch.manual_seed(seed)
        scale = float((inputs["train"].truth - inputs["train"].centroid).abs().std())
        sniper = SniperRegressor(inputs["train"].features.shape[1], len(centroids), offset_scale_deg=scale)
        sniper.load_state_dict(fit_sniper(sniper, inputs["train"], inputs["val"], SNIPER, seed).state)
        with torch.no_grad():
            after = sniper_positions(sniper.eval(), inputs["test"]).numpy()
        truth, before = inputs["test"].truth.numpy(), inputs["test"].centroid.numpy()
        result["region accuracy (test)"] = float((inputs["test"].region.numpy() == views_labels(sets["test"])).mean())
        result["centroid"] = float(np.median(haversine_km(*before.T, *truth.T)))
        result[f"sniper at {at}"] = float(np.median(haversine_km(*after.T, *truth.T)))
    return result


def views_labels(views) -> np.ndarray:
    return views.labels.numpy()


def _sniper_inputs(out, views, centroids, at: str) -> SniperInputs:
    logits, fused = out
    comb = combine([logits], [fused], [1.0], centroids)
    region = views.labels.numpy() if at == "true" else comb.top1
    return SniperInputs(fused, torch.as_tensor(region), torch.as_tensor(comb.probs[np.arange(len(region)), region]).float(),
                        torch.as_tensor(centroids[region]), views.latlon)


def _median_table(title: str, runs: list[dict]) -> None:
    print(f"\n### {title}\n\n| model | test top-1 | test log-loss |\n|---|---|---|")
    for name in runs[0]:
        top1 = statistics.median(r[name]["top1"] for r in runs)
        loss = statistics.median(r[name]["nll"] for r in runs)
        print(f"| {name} | {top1:.1%} | {loss:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--photos", type=int, default=1600)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-scout-"))
    cfg, paths = tiny_data(workdir, args.photos)
    cache = bench_cache(cfg, paths)
    print(f"### Feature cache (tiny_convnext, {cache['locations']} train locations, {cache['views']} views)\n")
    print(f"| one epoch of the fusion head | seconds |\n|---|---|\n| through the frozen backbone | {cache['through_s']:.2f} |\n"
          f"| from cached features | {cache['cached_s']:.3f} |\n| speed-up | {cache['through_s'] / cache['cached_s']:.0f}x |\n"
          f"| filling the cache once (all splits) | {cache['fill_s']:.2f} |")
    _median_table("Tiny twins (random weights) on synthetic photos", [_tiny_scouts(cfg, paths, s) for s in range(args.seeds)])
    _median_table("Appearance features (what a good backbone sees)", [_appearance_scouts(s) for s in range(args.seeds)])
    for noise in (0.5, 3.0):
        snipers = [bench_sniper(s, noise) for s in range(args.seeds)]
        print(f"\n### Sniper (appearance features, view noise {noise}, test)\n\n| position | median km |\n|---|---|")
        for name in snipers[0]:
            print(f"| {name} | {statistics.median(r[name] for r in snipers):.2f} |")


def _tiny_scouts(cfg, paths, seed: int) -> dict:
    from geolocate.models.features import FeatureCache
    from geolocate.data.views import split_views, view_files
    from geolocate.scout.regions import location_frame
    from geolocate.scout.context import build_scout

    frame = location_frame(paths.data)
    files, n_classes, sets, dims = view_files(frame, paths.data), int(frame["label"].max()) + 1, [], []
    for phase, name in (("scout-clip", cfg.model.name), ("scout-convnext", cfg.scout.second_model)):
        model = build_scout(cfg, phase, n_classes)
        rows, feats = FeatureCache(paths.data.features, name, model).features(model, files, 64)
        sets.append(split_views(frame, rows, feats))
        dims.append(feats.shape[1])
    return scouts_on(sets, dims, n_classes, seed)


def _appearance_scouts(seed: int) -> dict:
    from geolocate.data.synthetic_views import appearance_views

    first, _ = appearance_views(seed=seed, dim=32)
    second, _ = appearance_views(seed=seed, dim=32, noise=0.8)  # same locations (same seed), a noisier "expert"
    return scouts_on([first, second], [32, 32], 4, seed)


if __name__ == "__main__":
    main()
