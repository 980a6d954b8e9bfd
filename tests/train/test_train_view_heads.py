"""Fusion heads on cached features with missing views, the fitted ensemble, and the sniper's gain."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from geolocate.config import TrainConfig
from geolocate.evaluate.calibration import nll
from geolocate.train.ensemble import fit_ensemble_weights
from geolocate.geo import haversine_km
from geolocate.models.multiview import FusionHead
from geolocate.models.sniper import SniperRegressor
from geolocate.scout.bundle import combine, ensemble_of
from geolocate.data.synthetic_views import appearance_views
from geolocate.data.views import gather_views
from geolocate.evaluate.choice import ValJudge
from geolocate.models.multiview import head_outputs
from geolocate.models.sniper import SniperInputs, sniper_positions
from geolocate.train.sniper import fit_sniper
from geolocate.train.view_heads import PROBE_L2, drop_views, fit_fusion_head, fit_probe_head

CFG = TrainConfig(epochs=12, batch_size=32, lr=3e-3)
SNIPER = CFG.model_copy(update={"epochs": 20})  # scout.sniper_epochs


@pytest.fixture(scope="module")
def views():
    return appearance_views(n_locations=480, seed=1)


def test_gather_views_masks_missing_and_unreadable_views():
    frame = pl.DataFrame({"location_id": ["a", "b"], "north": ["1", None], "east": ["2", "3"], "south": [None, "9"],
                          "west": [None, None], "label": [0, 1], "lat": [1.0, 2.0], "lon": [3.0, 4.0]})
    feats = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    views = gather_views(frame, {"1": 0, "2": 1, "3": 2}, feats)  # "9" failed to decode: not in the table
    assert views.features.shape == (2, 4, 4) and views.mask.tolist() == [[True, True, False, False], [False, True, False, False]]
    assert torch.equal(views.features[1, 1], feats[2]) and not views.features[1, 2].any()


@pytest.mark.parametrize("kind", ["mean", "transformer"])
def test_masked_views_do_not_change_the_output(kind):
    torch.manual_seed(0)
    head = FusionHead(8, 3, kind=kind, fusion_dim=16, layers=1, heads=2).eval()
    feats, mask = torch.randn(5, 4, 8), torch.tensor([[1, 1, 1, 1], [1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 0, 0], [0, 1, 1, 1]], dtype=torch.bool)
    noisy = feats.clone()
    noisy[~mask] = torch.randn(int((~mask).sum()), 8) * 100
    with torch.no_grad():
        assert head(feats, mask).shape == (5, 3)
        assert torch.allclose(head(feats, mask), head(noisy, mask), atol=1e-5)


def test_view_dropout_hides_only_present_views_and_never_all():
    mask = torch.rand(2000, 4) > 0.3
    mask[:, 0] |= ~mask.any(dim=1)
    dropped = drop_views(mask, 0.6, torch.Generator().manual_seed(0))
    assert not (dropped & ~mask).any() and dropped.any(dim=1).all() and dropped.sum() < mask.sum()


def _scout(views, kind: str, seed: int, centroids):
    torch.manual_seed(seed)
    head = FusionHead(32, 4, kind=kind, fusion_dim=32, layers=1, heads=2)
    fit = (fit_probe_head if kind == "probe" else fit_fusion_head)(head, views, CFG, seed, ValJudge.of(views, centroids))
    head.load_state_dict(fit.state)
    return {split: head_outputs(head, v) for split, v in views.items()}


def test_ensemble_weights_fitted_on_val_are_no_worse_than_either_scout(views):
    sets, centroids = views
    scouts = [_scout(sets, "mean", 0, centroids), _scout(sets, "transformer", 1, centroids)]
    labels = sets["val"].labels.numpy()
    fit = fit_ensemble_weights([s["val"][0] for s in scouts], labels)
    assert all(w >= 0 for w in fit.weights) and sum(fit.weights) > 0
    ensemble_nll = nll(ensemble_of([s["val"][0] for s in scouts], fit.weights), labels)
    assert ensemble_nll <= min(nll(s["val"][0], labels) for s in scouts) + 1e-9
    assert ensemble_nll == pytest.approx(fit.nll)


def test_sniper_lowers_median_km_against_the_region_centroid(views):
    sets, centroids = views
    scout = _scout(sets, "transformer", 0, centroids)

    def inputs(split: str) -> SniperInputs:
        logits, fused = scout[split]
        comb = combine([logits], [fused], [1.0], centroids)
        region = sets[split].labels.numpy() if split == "train" else comb.top1
        return SniperInputs(fused, torch.as_tensor(region), torch.as_tensor(comb.probs[np.arange(len(region)), region]).float(),
                            torch.as_tensor(centroids[region]), sets[split].latlon)

    train, val, test = inputs("train"), inputs("val"), inputs("test")
    torch.manual_seed(0)
    sniper = SniperRegressor(train.features.shape[1], 4, hidden=64, offset_scale_deg=float((train.truth - train.centroid).abs().std()))
    sniper.load_state_dict(fit_sniper(sniper, train, val, SNIPER, 0).state)
    with torch.no_grad():
        after = sniper_positions(sniper.eval(), test).numpy()
    truth, before = test.truth.numpy(), test.centroid.numpy()
    km_before = np.median(haversine_km(before[:, 0], before[:, 1], truth[:, 0], truth[:, 1]))
    km_after = np.median(haversine_km(after[:, 0], after[:, 1], truth[:, 0], truth[:, 1]))
    assert km_after < 0.8 * km_before, (km_before, km_after)


def test_sniper_stops_once_val_median_km_stops_improving():
    # Val truth sits on the centroids, so the untrained sniper (zero offsets) is already perfect:
    # no later epoch can beat it and training must stop after `patience` epochs, keeping epoch 0.
    gen = torch.Generator().manual_seed(0)
    n, dim, regions = 64, 8, 4
    region = torch.randint(0, regions, (n,), generator=gen)
    centroid = torch.rand(regions, 2, generator=gen, dtype=torch.float64)[region] * 10 + 40
    truth = centroid + torch.randn(n, 2, generator=gen, dtype=torch.float64)
    train = SniperInputs(torch.randn(n, dim, generator=gen), region, torch.ones(n), centroid, truth)
    val = SniperInputs(train.features, region, torch.ones(n), centroid, centroid.clone())
    sniper = SniperRegressor(dim, regions, hidden=16, offset_scale_deg=1.0)
    fit = fit_sniper(sniper, train, val, SNIPER.model_copy(update={"patience": 3}), 0)
    assert fit.best_epoch == 0
    assert [row["epoch"] for row in fit.history] == [0, 1, 2, 3]
    never = fit_sniper(sniper, train, val, SNIPER.model_copy(update={"patience": 0, "epochs": 6}), 0)
    assert [row["epoch"] for row in never.history] == list(range(7))  # patience 0: early stopping off


def _noise_like(sets, seed: int = 0):
    """The same locations with features that say nothing about where they are."""
    gen = torch.Generator().manual_seed(seed)
    return {split: type(v)(v.location_ids, torch.randn(v.features.shape, generator=gen), v.mask, v.labels, v.latlon)
            for split, v in sets.items()}


def test_probe_learns_the_regions_and_its_standardisation_travels_in_the_state(views):
    sets, centroids = views
    head = FusionHead(32, 4, kind="probe")
    fit = fit_probe_head(head, sets, CFG, 0, ValJudge.of(sets, centroids))
    assert [row["l2"] for row in fit.history] == list(PROBE_L2) and 1 <= fit.best_epoch <= len(PROBE_L2)
    majority = np.bincount(sets["test"].labels.numpy()).max() / len(sets["test"])
    reloaded = FusionHead(32, 4, kind="probe")
    reloaded.load_state_dict(fit.state)  # shift/scale are buffers: a checkpoint carries them
    logits, _ = head_outputs(reloaded, sets["test"])
    assert (logits.argmax(1) == sets["test"].labels.numpy()).mean() > majority + 0.2
    assert not torch.equal(reloaded.fusion.scale, torch.ones(32))


def test_probe_on_features_without_signal_falls_back_towards_the_priors(views):
    sets, centroids = views
    noise = _noise_like(sets)
    judge = ValJudge.of(noise, centroids)
    fit = fit_probe_head(FusionHead(32, 4, kind="probe"), noise, CFG, 0, judge)
    weakest = fit.history[0]
    # Noise fitted hard sends val anywhere; val must prefer a stronger L2 (probabilities nearer the priors).
    assert fit.best_epoch > 1 and ValJudge.key(fit.history[fit.best_epoch - 1]) < ValJudge.key(weakest)


def test_judge_ranks_a_prior_above_a_confident_wrong_guess(views):
    sets, centroids = views
    judge = ValJudge.of(sets, centroids)
    labels = sets["val"].labels.numpy()
    prior = np.tile(np.log(np.bincount(sets["train"].labels.numpy(), minlength=4) + 1.0), (len(labels), 1))
    wrong = np.eye(4)[(labels + 2) % 4] * 20.0  # always the region two steps away, very sure of it
    assert ValJudge.key(judge.score(prior)) < ValJudge.key(judge.score(wrong))
    assert judge.score(np.eye(4)[labels] * 20.0)["val_score"] < 1  # the truth beats the trivial bar


def test_fusion_head_stops_once_val_stops_improving(views):
    sets, centroids = views
    noise = _noise_like(sets, seed=1)
    head = FusionHead(32, 4, kind="mean")
    fit = fit_fusion_head(head, noise, CFG.model_copy(update={"epochs": 40, "patience": 2}), 0, ValJudge.of(noise, centroids))
    assert len(fit.history) == fit.best_epoch + 2 < 40
    assert all(ValJudge.key(row) >= ValJudge.key(fit.history[fit.best_epoch - 1]) for row in fit.history)


@pytest.mark.parametrize("with_probe", [False, True])
def test_vote_heads_learn_the_regions_and_travel_in_a_checkpoint(views, tmp_path, with_probe):
    from geolocate.artifacts.checkpoint import load_checkpoint, save_checkpoint
    from geolocate.models import create_model
    from geolocate.train.view_heads import fit_vote_head

    sets, centroids = views
    model = create_model("tiny_convnext", num_classes=4, views=4, fusion="probe")
    model.head = FusionHead(32, 4, kind="probe")  # the synthetic features are 32 wide
    fit = fit_vote_head(model.head, sets, CFG, 0, ValJudge.of(sets, centroids), with_probe=with_probe)
    assert {row["alpha"] for row in fit.history} == ({0.25, 0.5, 0.75} if with_probe else {1.0})
    logits, _ = head_outputs(model.head, sets["test"])
    majority = np.bincount(sets["test"].labels.numpy()).max() / len(sets["test"])
    assert (logits.argmax(1) == sets["test"].labels.numpy()).mean() > majority + 0.2
    # as the scout saves it: the registry kwargs name the vote settings, the state holds the index
    model.model_kwargs["votes"] = model.head.classifier.settings
    model.head.model_kwargs["in_dim"] = 32
    save_checkpoint(tmp_path / "scout", model, {"classes": [], "metrics": {}})
    reloaded, _ = load_checkpoint(tmp_path / "scout", factory=lambda name, num_classes, pretrained, **kw: _rebuilt(name, num_classes, kw))
    again, _ = head_outputs(reloaded.head, sets["test"])
    assert np.allclose(again, logits)


def _rebuilt(name, num_classes, kwargs):
    from geolocate.models import create_model

    model = create_model(name, num_classes=num_classes, **kwargs)
    model.head = FusionHead(32, num_classes, kind="probe", votes=kwargs["votes"])
    return model


def test_the_sniper_mlp_starts_from_the_run_seed_whatever_ran_before():
    """`--phase sniper` alone and after the other phases build the same MLP: its initialisation
    does not depend on how much of torch's global generator earlier work used."""
    from geolocate.train.sniper import train_sniper

    gen = torch.Generator().manual_seed(1)
    n, dim, regions = 48, 8, 3
    region = torch.randint(0, regions, (n,), generator=gen)
    centroid = torch.rand(regions, 2, generator=gen, dtype=torch.float64)[region] * 10 + 40
    truth = centroid + torch.randn(n, 2, generator=gen, dtype=torch.float64) * 0.1
    train = SniperInputs(torch.randn(n, dim, generator=gen), region, torch.ones(n), centroid, truth)
    cfg = SNIPER.model_copy(update={"epochs": 2, "small_data": 0})
    states = []
    for draws in (0, 1000):
        torch.manual_seed(123)
        torch.rand(draws)  # earlier phases used the generator this much
        sniper, _, _ = train_sniper(train, train, regions, cfg, (1.0, 1.0))
        states.append({k: v.clone() for k, v in sniper.state_dict().items()})
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
