"""The data the baselines of a single-photo run need: its train + val pool, and frozen embeddings.

The k-NN baselines use the backbone *as it was before training* (`model.name` with the configured
pretrained weights), so they measure what the frozen features already know and a fine-tuned model
must add to it. Photos go through the shared feature cache (`models.features`), keyed like any
frozen backbone's, so a probe run's embeddings or an earlier evaluation's are read back, not
recomputed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from geolocate.console import console
from geolocate.evaluate.baselines import Pool, all_baselines
from geolocate.evaluate.collect import Outputs


def _pool_frame(paths, cell_ids: list[str], splits: list[str]) -> tuple[pl.DataFrame, Pool]:
    """The photos of `splits` whose cell is one of the run's classes, and them as a baseline `Pool`."""
    from geolocate.data.frames import training_frame

    index = {cell: i for i, cell in enumerate(cell_ids)}
    frame = training_frame(paths.data).filter(pl.col("split").is_in(splits) & pl.col("cell_id").is_in(list(index)))
    return frame, Pool(np.array([index[c] for c in frame["cell_id"]], dtype=np.int64), frame.select("lat", "lon").to_numpy())


def photo_vectors(cfg, paths, cell_ids: list[str], split_ids: list[str]) -> dict[str, np.ndarray] | None:
    """image id → frozen embedding of the run's train and val photos and of `split_ids` (val or
    test photos), for the val bar and the baselines to share; None with `eval.knn_baseline` off or
    when the backbone cannot be built."""
    if not cfg.eval.knn_baseline:
        return None
    frame, _ = _pool_frame(paths, cell_ids, ["train", "val"])
    files = {i: paths.data.root / p for i, p in zip(frame["image_id"], frame["processed_path"])}
    rows = pl.read_parquet(paths.data.manifest, columns=["image_id", "processed_path"]).filter(pl.col("image_id").is_in(split_ids))
    files.update({i: paths.data.root / p for i, p in rows.iter_rows()})
    return frozen_embeddings(cfg, paths, files)


def photo_val_bar(paths, cell_ids: list[str], centroids: np.ndarray, val_ids: list[str], val_latlon: np.ndarray,
                  vectors: dict[str, np.ndarray] | None) -> tuple[float, float]:
    """The bar every choice on val ranks against (`baselines.target_bar`): the trivial baselines
    drawn from the train photos and, with `vectors` (`photo_vectors`), 5-NN over their frozen
    embeddings, the k-NN baseline evaluation reports."""
    from geolocate.evaluate.baselines import target_bar

    frame, pool = _pool_frame(paths, cell_ids, ["train"])
    val = Pool(np.zeros(len(val_ids), dtype=np.int64), np.asarray(val_latlon, dtype=np.float64).reshape(-1, 2))
    embedded = _embedded(frame, pool, list(val_ids), val, vectors) if vectors is not None and len(val_ids) else None
    return target_bar(pool, val, centroids, embedded)


def photo_baselines(paths, cell_ids: list[str], centroids: np.ndarray, test: Outputs,
                    vectors: dict[str, np.ndarray] | None) -> dict[str, dict]:
    """Every baseline on the run's test photos, drawn from its train + val photos; the k-NN ones
    with `vectors` (`photo_vectors`)."""
    frame, pool = _pool_frame(paths, cell_ids, ["train", "val"])
    truth = Pool(np.asarray(test.labels, dtype=np.int64), np.stack([test.lat, test.lon], 1))
    if vectors is not None:
        pool, truth = _embedded(frame, pool, list(test.image_ids), truth, vectors)
    return all_baselines(pool, truth, centroids)


def _embedded(frame: pl.DataFrame, pool: Pool, split_ids: list[str], split: Pool,
              vectors: dict[str, np.ndarray]) -> tuple[Pool, Pool]:
    """`pool` (the photos of `frame`) and `split` (photos `split_ids`) with their frozen embeddings."""
    return _with_embeddings(pool, frame["image_id"].to_list(), vectors), _with_embeddings(split, split_ids, vectors)


def _with_embeddings(pool: Pool, ids: list[str], vectors: dict[str, np.ndarray]) -> Pool:
    """`pool` restricted to the rows that have an embedding (an unreadable photo has none)."""
    keep = [i for i, image_id in enumerate(ids) if image_id in vectors]
    if len(keep) < len(ids):
        console.print(f"[yellow]![/] k-NN baselines: {len(ids) - len(keep)} photos could not be embedded and are left out")
    return Pool(pool.labels[keep], pool.latlon[keep], np.stack([vectors[ids[i]] for i in keep]) if keep else None)


def frozen_embeddings(cfg, paths, files: dict[str, Path]) -> dict[str, np.ndarray] | None:
    """image id → embedding by the untrained backbone, read and filled through the feature cache
    (`data/features/<model.name>/`); None, with a note, when the backbone cannot be built."""
    import torch

    from geolocate.models import create_model
    from geolocate.models.features import FeatureCache

    from geolocate.device import resolve_device

    m = cfg.model
    # A randomly initialised backbone (pretrained = false) embeds the same way every run; the fork
    # leaves the generator as training left it (the bar is computed between two heads' fits).
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(cfg.train.seed)  # the CPU's only: the fork restores no other
        try:
            model = create_model(m.name, num_classes=0, pretrained=m.pretrained, weights=m.weights).eval()
        except Exception as exc:  # offline without local weights, or a hub error: the other baselines still stand
            console.print(f"[yellow]![/] k-NN baselines skipped: the frozen backbone {m.name} cannot be built ({exc})")
            return None
    cache = FeatureCache(paths.data.features, m.name, model, lock=paths.data.lock)
    rows, feats = cache.features(model, files, cfg.train.batch_size, str(resolve_device(cfg.train.device)))
    model.to("cpu")
    feats = feats.numpy()
    return {image_id: feats[row] for image_id, row in rows.items()}
