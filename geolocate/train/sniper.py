"""The sniper's training: the residual MLP fitted on cached fused features (haversine loss), and on
small data the neighbour averages beside it, one kept by the val rule (`evaluate.choice`).

The MLP needs thousands of locations to learn offsets inside a region; below `train.small_data`
train locations the `NeighbourSniper` (mean position of the k most similar train locations, k in
`NEIGHBOUR_KS`) and the `RetrievalSniper` (the single-photo system's retrieval refinement over the
train locations) are tried too. The MLP's own epoch 0 is the scouts' position unmoved, so "no
sniper" is always among the candidates.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from geolocate.config import TrainConfig
from geolocate.models.sniper import SniperInputs, sniper_positions
from geolocate.train.fitting import FitResult, fit_epochs, small_ops

NEIGHBOUR_KS = (5, 10, 20)


def fit_sniper(sniper: nn.Module, train: SniperInputs, val: SniperInputs, cfg: TrainConfig, seed: int) -> FitResult:
    """Haversine loss on frozen features for `cfg.epochs` (the caller passes the sniper's epochs); the
    kept state is the epoch with the lowest val median km (val read at the *predicted* region, as
    prediction will be), epoch 0 being the untrained sniper (zero offsets). Training stops once
    `cfg.patience` epochs brought no better one (0: never)."""
    from geolocate.losses import HaversineLoss
    from geolocate.train.view_heads import optimizer_for

    loss_fn, gen = HaversineLoss(), torch.Generator().manual_seed(seed)
    optimizer, scheduler = optimizer_for(sniper, cfg, cfg.epochs, max(1, -(-len(train) // cfg.batch_size)))

    def run_epoch(epoch: int) -> dict:
        sniper.train()
        losses = []
        for batch in torch.randperm(len(train), generator=gen).split(cfg.batch_size):
            part = train.take(batch)
            loss = loss_fn(sniper_positions(sniper, part), part.truth)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
        return {"epoch": epoch + 1, "train_km": float(np.mean(losses)), "val_median_km": _median_km(sniper, val)}

    with small_ops():
        initial = {"epoch": 0, "val_median_km": _median_km(sniper, val)}
        return fit_epochs(run_epoch, range(cfg.epochs), lambda row: (row["val_median_km"],), cfg.patience,
                          module=sniper, initial=initial)


@torch.inference_mode()
def _median_km(sniper: nn.Module, inputs: SniperInputs) -> float:
    from geolocate.losses import haversine_km_torch

    sniper.eval()
    pred = sniper_positions(sniper, inputs)
    return float(haversine_km_torch(pred[:, 0], pred[:, 1], inputs.truth[:, 0], inputs.truth[:, 1]).median())


def train_sniper(train: SniperInputs, val: SniperInputs, num_regions: int, cfg: TrainConfig,
                 bar: tuple[float, float]) -> tuple[nn.Module, list[dict], FitResult]:
    """The residual MLP fitted (`fit_sniper`, `cfg.epochs` epochs), then the candidate the val rule keeps;
    (sniper, one row per candidate, the MLP's fit)."""
    from geolocate.models.sniper import SniperRegressor

    # Its initialisation and dropout draw on the run's seed, not on whatever the phases before left in
    # torch's global generator: `--phase sniper` alone then trains the same MLP as `--phase all`.
    with torch.random.fork_rng(devices=[]):  # it trains on the CPU: the fork restores the CPU's generator
        torch.default_generator.manual_seed(cfg.seed)
        mlp = SniperRegressor(train.features.shape[1], num_regions, offset_scale_deg=offset_scale(train))
        fit = fit_sniper(mlp, train, val, cfg, cfg.seed)
    mlp.load_state_dict(fit.state)
    sniper, table = choose_sniper(sniper_candidates(mlp, train, len(train) < cfg.small_data, val, bar), val, bar)
    return with_val(sniper, train, val), table, fit


def with_val(sniper: nn.Module, train: SniperInputs, val: SniperInputs) -> nn.Module:
    """An index sniper (neighbours, retrieval) chosen on val, now searching the val locations too, as
    the k-NN baselines search train + val; the MLP as it is. Val's own figures stay the train
    part's (`models.held_out`)."""
    from geolocate.evaluate.retrieval_sniper import RetrievalSniper
    from geolocate.models.sniper import NeighbourSniper

    if not isinstance(sniper, (NeighbourSniper, RetrievalSniper)) or not len(val):
        return sniper
    features, truth = torch.cat([train.features, val.features]), torch.cat([train.truth, val.truth])
    if isinstance(sniper, NeighbourSniper):
        return NeighbourSniper.of(features, truth, sniper.k, train_size=len(train))
    if val.labels is None:
        return sniper
    setting = {"top_cells": sniper.top_cells, "neighbours": sniper.neighbours, "method": sniper.method}
    return RetrievalSniper.of(features, truth, torch.cat([train.labels, val.labels]), setting, train_size=len(train))


def offset_scale(train: SniperInputs) -> float:
    """Typical distance in degrees of train positions from where their offset starts (the MLP's unit)."""
    offsets = (train.truth - train.centroid).abs()
    return max(float(offsets.std()), 1e-4)


def sniper_candidates(mlp: nn.Module, train: SniperInputs, small_data: bool,
                      val: SniperInputs | None = None, bar: tuple[float, float] | None = None) -> list[tuple[str, nn.Module]]:
    """(name, sniper) pairs to compare on val: the fitted MLP, and on small data the neighbour snipers
    and retrieval refinement (its setting chosen on `val`, as the single-photo system chooses its own)."""
    from geolocate.models.sniper import NeighbourSniper

    found = [("mlp", mlp)]
    if small_data:
        found += [(f"neighbours (k={k})", NeighbourSniper.of(train.features, train.truth, k)) for k in NEIGHBOUR_KS if k <= len(train)]
        found += retrieval_candidate(train, val, bar)
    return found


def retrieval_candidate(train: SniperInputs, val: SniperInputs | None, bar) -> list[tuple[str, nn.Module]]:
    """The retrieval sniper with the setting val prefers, or nothing when the inputs lack what it reads."""
    from geolocate.evaluate.position import position_errors_km
    from geolocate.evaluate.refine import choose_refinement
    from geolocate.evaluate.retrieval_sniper import RetrievalSniper, location_index

    if val is None or val.probs is None or train.labels is None or not len(val) or not len(train):
        return []
    index = location_index(train.features, train.truth, train.labels)
    truth = val.truth.numpy()
    base = position_errors_km(val.centroid.numpy(), truth)
    setting = choose_refinement(index, val.probs.double().numpy(), val.features.float().numpy(), truth, base,
                                bar or (float("nan"), float("nan")))
    name = f"retrieval ({setting['method']}, top {setting['top_cells']}, {setting['neighbours']} neighbours)"
    return [(name, RetrievalSniper.of(train.features, train.truth, train.labels, setting))]


def choose_sniper(candidates: list[tuple[str, nn.Module]], val: SniperInputs, bar: tuple[float, float]) -> tuple[nn.Module, list[dict]]:
    """The candidate the val rule keeps, and one row per candidate for the report."""
    from geolocate.evaluate.choice import choose, error_row
    from geolocate.evaluate.position import position_errors_km

    rows = []
    for name, sniper in candidates:
        sniper.eval()
        with torch.inference_mode():
            err = position_errors_km(sniper_positions(sniper, val).numpy(), val.truth.numpy())
        rows.append({"head": name, **error_row(err, bar)})
    return candidates[choose(rows)][1], rows
