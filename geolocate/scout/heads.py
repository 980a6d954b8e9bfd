"""The four-view system's heads, as the shared trainer (`train.system`) asks for them.

On a few thousand locations a transformer fusion learns the regions; on fifty it learns the majority
region and nothing else (the Cap-Ferret benchmark: every seed collapsed). Below `train.small_data`
train locations, `model.head = auto` therefore trains every candidate of `train.small_data_heads`,
and the shared head choice keeps one by the val rule (`evaluate.choice`):

- `probe`: a linear probe on the standardised mean of L2-normalised views, along an L2 path
  (seconds on cached features);
- `mean`, `transformer`: the fusion heads, trained on cached features with early stopping on val;
- `finetune`: `model.fusion` trained through the backbone (its last `model.train_last_n_blocks`
  blocks, or all of it), reading images: the slow one;
- `knn`, `knn+probe` (opt-in): the k nearest train locations vote across regions, alone or mixed
  with the probe (`models.votes`).

Above the threshold, or with `model.head` set, one head trains as asked.
"""

from __future__ import annotations

from geolocate.config import GeolocateConfig
from geolocate.models.votes import VOTE_HEADS
from geolocate.scout.context import PhaseContext, build_scout, scout_model_name, scout_views, trains_backbone
from geolocate.train.system import Candidate


def heads_to_try(cfg: GeolocateConfig, n_train: int) -> list[str]:
    """The candidate heads of a scout trained on `n_train` locations, in training order."""
    if cfg.model.head != "auto":
        return [cfg.model.head]
    if n_train < cfg.train.small_data:
        return list(dict.fromkeys(cfg.train.small_data_heads))
    return ["finetune"] if trains_backbone(cfg) else [cfg.model.fusion]


class FourViewSystem:
    """One scout phase of a scout-sniper run: its locations (`ctx`) and its heads. A candidate's
    payload is (model, {split: ViewSet}, feature fingerprint)."""

    name = "scout-sniper"

    def __init__(self, ctx: PhaseContext, phase: str) -> None:
        self.ctx, self.phase = ctx, phase

    def candidate_heads(self, n_train: int) -> list[str]:
        return heads_to_try(self.ctx.cfg, n_train)

    def train_head(self, head: str) -> Candidate:
        """A head on cached frozen features, or `finetune` through the backbone (then fresh features)."""
        from geolocate.models.multiview import head_outputs
        from geolocate.train.view_heads import fit_fusion_head, fit_probe_head, fit_through_images, fit_vote_head

        cfg = self.ctx.cfg.model_copy(deep=True)
        if head == "finetune":  # the backbone trains: its last N blocks when set, otherwise all of it
            cfg.model.freeze_backbone = bool(cfg.model.train_last_n_blocks)
        else:  # the vote heads read the probe's features (standardised mean of unit views)
            fusion = "probe" if head in VOTE_HEADS else head
            cfg.model.fusion, cfg.model.freeze_backbone, cfg.model.train_last_n_blocks = fusion, True, None
        model = build_scout(cfg, self.phase, self.ctx.regions.height)
        if head == "finetune":
            from geolocate.data.views import view_files

            fit = fit_through_images(model, self.ctx.frame, view_files(self.ctx.frame, self.ctx.paths.data), cfg, cfg.train.seed)
            model.load_state_dict(fit.state)
        views, fingerprint = scout_views(self.ctx, model, scout_model_name(cfg, self.phase)[0])
        judge = self._judge(views)
        if head == "finetune":  # its epochs were ranked by log-loss: the rule reads the tuned model's position
            val = {**fit.best_row, **judge.score(head_outputs(model.head, views["val"])[0])}
        elif head in VOTE_HEADS:
            fit = fit_vote_head(model.head, views, cfg.train, cfg.train.seed, judge, with_probe=head == "knn+probe")
            model.model_kwargs["votes"], val = model.head.classifier.settings, fit.best_row
        else:
            fit = (fit_probe_head if head == "probe" else fit_fusion_head)(model.head, views, cfg.train, cfg.train.seed, judge)
            model.head.load_state_dict(fit.state)
            val = fit.best_row
        return Candidate(head, fit, val, (model, views, fingerprint))

    def _judge(self, views):
        from geolocate.evaluate.choice import ValJudge
        from geolocate.scout.context import location_val_bar
        from geolocate.scout.regions import centroids_of

        return ValJudge.of(views, centroids_of(self.ctx.regions), self.ctx.cfg.eval.weighted_topk, location_val_bar(self.ctx))
