"""Which head a France v1 run trains: fine-tune, linear probe, or both with the better kept on val.

`model.head` decides; `auto` probes a frozen backbone, tries `train.small_data_heads` below
`train.small_data` train photos, and fine-tunes otherwise (as before heads could be chosen).
Several candidates go through the shared head choice (`train.system.choose_head`, ranked by the
val rule of `evaluate.choice`, as the four-view system's heads are).
A run that tried a probe records its plan and the candidates' val figures in
`head_selection.json`; evaluation copies them into metrics.json and REPORT.md, and `--resume`
reads the plan to continue the same candidates.
"""

from __future__ import annotations

import json

import numpy as np

from geolocate import atomic
from geolocate.console import console
from geolocate.train.fitting import FitResult
from geolocate.train.loop import fit
from geolocate.train.system import Candidate, choose_head

SINGLE_PHOTO_HEADS = ("finetune", "probe", "knn", "knn+probe")  # in training order: a fine-tune first runs exactly as it always did


def candidate_heads(cfg, n_train: int) -> list[str]:
    """The heads a single-photo run trains, in training order."""
    m, t = cfg.model, cfg.train
    if m.head != "auto":
        return [m.head]
    if m.freeze_backbone and not m.train_last_n_blocks:
        return ["probe"]  # a fully frozen backbone: pushing photos through it every epoch buys nothing
    if n_train >= t.small_data:
        return ["finetune"]
    tried = [h for h in SINGLE_PHOTO_HEADS if h in t.small_data_heads]
    if not tried:
        console.print(f"[yellow]![/] train.small_data_heads {t.small_data_heads} has no single-photo head (probe, finetune): fine-tuning")
    return tried or ["finetune"]


class SinglePhotoSystem:
    """France v1 as the shared trainer sees it: its photos (the session) and its heads."""

    name = "v1"

    def __init__(self, s, run, resume: tuple[int, list[dict]] | None = None) -> None:
        self.s, self.run, self.resume, self.net_used = s, run, resume or (0, None), False

    def candidate_heads(self, n_train: int) -> list[str]:
        return candidate_heads(self.s.cfg, n_train)

    def train_head(self, head: str) -> Candidate:
        from geolocate.evaluate.choice import scored_row

        if head == "finetune":  # the bar after the fit: under DDP the other ranks are in it already
            payload = None
            result = fit(self.s, self.run, start_epoch=self.resume[0], history=self.resume[1])
            bar = _val_bar(self.s)
        else:  # each head on the frozen backbone gets its own net once `s.net` is taken
            bar = _val_bar(self.s)
            payload = _frozen_head(self.s, head, fresh=self.net_used, bar=bar)
            result = payload[1]
        self.net_used = True
        val = scored_row(result.best_val["median_km"], result.best_val["p90_km"], bar)
        return Candidate(head, result, {**result.best_row, **val}, payload)


def _val_bar(s) -> tuple[float, float]:
    """The bar on the run's val photos (`evaluate.baseline_data.photo_val_bar`), drawn from its
    train photos: computed once per run, every candidate ranks against the same one."""
    from geolocate.evaluate.baseline_data import photo_val_bar, photo_vectors

    if "val_bar" not in s.extra:
        val, cell_ids = s.val_loader.dataset, s.classes["cell_id"].to_list()
        vectors = photo_vectors(s.cfg, s.paths, cell_ids, val.image_ids)
        s.extra["val_bar"] = photo_val_bar(s.paths, cell_ids, s.centroids, val.image_ids,
                                           np.stack([val.lats, val.lons], 1) if val.lats else np.zeros((0, 2)), vectors)
    return s.extra["val_bar"]


def train_heads(s, run, heads: list[str], resume: tuple[int, list[dict]] | None = None) -> FitResult:
    """Train each candidate, keep the one the val rule prefers (`evaluate.choice`) as the run's checkpoint."""
    start_epoch, history = resume or (0, None)
    if heads == ["finetune"]:
        return fit(s, run, start_epoch=start_epoch, history=history)
    if s.dist.is_main:
        write_plan(run, {"candidates": heads, "rows": []})
        console.print(f"head{'s' if len(heads) > 1 else ''}: {', '.join(heads)} (model.head = {s.cfg.model.head})")
    if not s.dist.is_main:  # only the fine-tune runs on every rank
        return fit(s, run, start_epoch=start_epoch, history=history) if "finetune" in heads else FitResult(0)
    chosen, rows = choose_head(SinglePhotoSystem(s, run, resume), heads)
    if chosen.head != "finetune":  # a fine-tune's files stay as fit() left them; a probe's replace them
        _save_probe(s, run, *chosen.payload)
    # Written last: a run whose plan names its choice is complete (`--resume` has nothing to do).
    write_plan(run, {"candidates": heads, "rows": rows, "chosen": chosen.head})
    return chosen.fit


def _frozen_head(s, head: str, fresh: bool, bar: tuple[float, float]):
    """(net, fit) of a head on the untrained backbone (a probe or a k-NN vote head): a fresh copy of
    the net when another candidate already changed `s.net`."""
    from geolocate.train.probe import train_probe, train_vote_head

    net = _untrained_net(s) if fresh else s.net
    if head == "probe":
        return net, train_probe(s, net)
    return net, train_vote_head(s, net, with_probe=head == "knn+probe", bar=bar)


def _untrained_net(s):
    from geolocate.train.setup import build_net, seed_everything

    seed_everything(s.cfg.train.seed)  # the same backbone the run started from (and the baselines build)
    return build_net(s.cfg, s.classes.height).to(s.dist.device)


def _save_probe(s, run, net, probe) -> None:
    """The probe as the run's checkpoint (last and best) and its epochs as metrics.csv."""
    from geolocate.artifacts.checkpoint import save_checkpoint
    from geolocate.artifacts.rundir import point_latest
    from geolocate.train.checkpointing import checkpoint_meta

    if net is not s.net:  # evaluation reloads the checkpoint into `s.net`: it needs the chosen head's shape
        s.net.head, s.net.model_kwargs = net.head, dict(net.model_kwargs)
    run.write_metrics_rows(probe.history)
    meta = checkpoint_meta(s, probe.best_epoch - 1, probe.best_val, run.run_id)
    first = not run.has_checkpoint
    save_checkpoint(run.last, net, meta)
    save_checkpoint(run.best, net, meta)
    if first:
        point_latest(run.root.parent, run)


def write_plan(run, plan: dict) -> None:
    atomic.write_json(run.head_selection, plan)


def read_plan(run) -> dict | None:
    """The run's head plan, or None for a run that only fine-tuned (or predates heads)."""
    path = run.head_selection
    return json.loads(path.read_text()) if path.is_file() else None
