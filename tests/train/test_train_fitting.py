"""The one fit loop with early stopping that every trainer of both systems goes through."""

from __future__ import annotations

import torch
from torch import nn

from geolocate.train.fitting import EarlyStopping, fit_epochs


def _scripted(values):
    """run_epoch returning the given val figures in turn, and a module whose weight records the epoch."""
    module = nn.Linear(1, 1, bias=False)

    def run_epoch(epoch: int) -> dict:
        with torch.no_grad():
            module.weight.fill_(float(epoch + 1))
        return {"epoch": epoch + 1, "val_median_km": values[epoch]}

    return run_epoch, module


def _key(row):
    return (row["val_median_km"],)


def test_stops_after_patience_epochs_without_a_better_one_and_keeps_the_best_weights():
    run_epoch, module = _scripted([5.0, 3.0, 4.0, 3.5, 1.0, 0.5])
    fit = fit_epochs(run_epoch, range(6), _key, patience=2, module=module)
    assert [r["epoch"] for r in fit.history] == [1, 2, 3, 4] and fit.stopped_early
    assert fit.best_epoch == 2 and fit.best_val == {"median_km": 3.0} and float(fit.state["weight"]) == 2.0


def test_patience_zero_never_stops():
    run_epoch, module = _scripted([5.0, 6.0, 7.0, 8.0, 9.0])
    fit = fit_epochs(run_epoch, range(5), _key, patience=0, module=module)
    assert len(fit.history) == 5 and not fit.stopped_early and fit.best_epoch == 1


def test_an_initial_row_is_epoch_zero_and_can_stay_the_best():
    run_epoch, module = _scripted([5.0, 6.0, 7.0])
    with torch.no_grad():
        module.weight.fill_(-1.0)
    fit = fit_epochs(run_epoch, range(3), _key, patience=2, module=module, initial={"epoch": 0, "val_median_km": 1.0})
    assert fit.best_epoch == 0 and [r["epoch"] for r in fit.history] == [0, 1, 2] and float(fit.state["weight"]) == -1.0


def test_a_resumed_stopper_starts_from_the_best_epoch_already_done():
    stopper = EarlyStopping(_key, patience=2, history=[{"epoch": 1, "val_median_km": 2.0}, {"epoch": 2, "val_median_km": 3.0}])
    assert stopper.best["epoch"] == 1 and stopper.should_stop(3) and not stopper.should_stop(2)
    assert not stopper.update({"epoch": 3, "val_median_km": 2.0})  # a tie is no improvement
