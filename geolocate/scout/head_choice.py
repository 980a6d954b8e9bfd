"""Which head a scout trains, and on small data the one val prefers.

On a few thousand locations a transformer fusion learns the regions; on fifty it learns the majority
region and nothing else (the Cap-Ferret benchmark: every seed collapsed). Below
`train.small_data` train locations, `model.head = auto` therefore trains every candidate of
`train.small_data_heads` and keeps the one `ValJudge` ranks best on val (how far its weighted
position is from beating the trivial baselines on median and p90):

- `probe`: a linear probe on the standardised mean of L2-normalised views, along an L2 path
  (seconds on cached features);
- `mean`, `transformer`: the fusion heads, trained on cached features with early stopping on val;
- `finetune`: `model.fusion` trained through the backbone (its last `model.train_last_n_blocks`
  blocks, or all of it), reading images: the slow one.

Above the threshold, or with `model.head` set, one head trains as asked.
"""

from __future__ import annotations

from dataclasses import dataclass

from geolocate.config import GeolocateConfig
from geolocate.console import console
from geolocate.scout.context import PhaseContext, build_scout, scout_model_name, scout_views, trains_backbone
from geolocate.scout.heads import FitResult, ValJudge

def heads_to_try(cfg: GeolocateConfig, n_train: int) -> list[str]:
    """The candidate heads of a scout trained on `n_train` locations, in training order."""
    if cfg.model.head != "auto":
        return [cfg.model.head]
    if n_train < cfg.train.small_data:
        return list(dict.fromkeys(cfg.train.small_data_heads))
    return ["finetune"] if trains_backbone(cfg) else [cfg.model.fusion]


@dataclass
class Trained:
    """One candidate after training: the model in its best state, how it got there, its val row."""

    head: str
    model: object
    fit: FitResult
    views: dict
    fingerprint: str
    val: dict

    def summary(self, chosen: bool) -> dict:
        keys = ("val_median_km", "val_p90_km", "val_score", "val_acc_top1")
        return {"head": self.head, **{k: self.val.get(k) for k in keys}, "best_epoch": self.fit.best_epoch,
                "seconds": round(self.fit.seconds, 2), "chosen": chosen}


def choose_head(ctx: PhaseContext, phase: str) -> tuple[Trained, list[dict]]:
    """Train each candidate head of `phase` and keep the best on val; (chosen, one row per candidate)."""
    n_train = int((ctx.frame["split"] == "train").sum())
    heads = heads_to_try(ctx.cfg, n_train)
    if len(heads) > 1:
        console.print(f"{phase}: {n_train} train locations (< train.small_data = {ctx.cfg.train.small_data}): "
                      f"choosing the head on val among {', '.join(heads)}")
    best, rows = None, []
    for head in heads:
        candidate = train_head(ctx, phase, head)
        if len(heads) > 1:
            _say(candidate)
        rows.append(candidate.summary(chosen=False))
        if best is None or ValJudge.key(candidate.val) < ValJudge.key(best.val):
            best = candidate  # only the best so far stays in memory: each candidate holds a whole backbone
    for row in rows:
        row["chosen"] = row["head"] == best.head
    return best, rows


def train_head(ctx: PhaseContext, phase: str, head: str) -> Trained:
    """One candidate: a head on cached frozen features, or `finetune` through the backbone."""
    from geolocate.scout.heads import fit_fusion_head, fit_probe_head
    from geolocate.scout.regions import centroids_of

    if head == "finetune":
        return _finetune(ctx, phase)
    cfg = ctx.cfg.model_copy(deep=True)
    cfg.model.fusion, cfg.model.freeze_backbone, cfg.model.train_last_n_blocks = head, True, None
    model = build_scout(cfg, phase, ctx.regions.height)
    views, fingerprint = scout_views(ctx, model, scout_model_name(cfg, phase)[0])
    judge = ValJudge.of(views, centroids_of(ctx.regions), ctx.cfg.eval.weighted_topk)
    fit = (fit_probe_head if head == "probe" else fit_fusion_head)(model.head, views, cfg.train, cfg.train.seed, judge)
    model.head.load_state_dict(fit.state)
    return Trained(head, model, fit, views, fingerprint, fit.history[fit.best_epoch - 1])


def _finetune(ctx: PhaseContext, phase: str) -> Trained:
    """`model.fusion` trained through the backbone; scored on val by the same judge afterwards."""
    from geolocate.scout.data import view_files
    from geolocate.scout.finetune import fit_end_to_end
    from geolocate.scout.heads import head_outputs
    from geolocate.scout.regions import centroids_of

    cfg = ctx.cfg.model_copy(deep=True)
    # finetune means the backbone trains: its last N blocks when set, otherwise all of it
    cfg.model.freeze_backbone = bool(cfg.model.train_last_n_blocks)
    model = build_scout(cfg, phase, ctx.regions.height)
    fit = fit_end_to_end(model, ctx.frame, view_files(ctx.frame, ctx.paths.data), cfg, cfg.train.seed)
    model.load_state_dict(fit.state)
    views, fingerprint = scout_views(ctx, model, scout_model_name(cfg, phase)[0])  # the tuned backbone: fresh features
    judge = ValJudge.of(views, centroids_of(ctx.regions), ctx.cfg.eval.weighted_topk)
    val = {**fit.history[fit.best_epoch - 1], **judge.score(head_outputs(model.head, views["val"])[0])}
    return Trained("finetune", model, fit, views, fingerprint, val)


def _say(t: Trained) -> None:
    v = t.val
    console.print(f"  {t.head:<11} val median {v['val_median_km']:.2f} km, p90 {v['val_p90_km']:.2f} km "
                  f"({v['val_score']:.2f} × the trivial bar), {t.fit.seconds:.1f} s")
