"""Test-time augmentation in evaluation: val and test seen once and as averaged views; val chooses.

`eval.tta` says what is measured: `off` one centre crop (nothing more runs), `on` the views only,
`auto` both, and then val decides (`data.tta.use_tta`): the views are kept when val's positions
score strictly better by the one small-data rule (`baselines.bar_scores` against the val bar;
each side with its own temperature and position mode, fitted as `evaluate.run.finish_v1` fits
them). Test is measured with whichever val chose: it never chooses. The record goes into the
checkpoint sidecar, where predict reads whether to run the views, and into metrics.json.

The retrieval index's train photos stay single-view: they are embedded once (six times the work
for an index that only has to hold what the photos look like). Val's photos, which join the index
once val has chosen (`refine.apply_retrieval`), are in it as val measured them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

from torch.utils.data import DataLoader

from geolocate.data.tta import TTA_SETTINGS, n_views, use_tta
from geolocate.evaluate.collect import Outputs, collect_outputs

CROPS = 3  # the centre and both ends of the width, each with its mirror image: 6 views
SIDES = ("plain", "tta")


@dataclass
class Seen:
    """One split's outputs from the centre crop (`plain`) and averaged over the views (`tta`); None where not measured."""

    plain: Outputs | None = None
    tta: Outputs | None = None

    @property
    def truth(self) -> Outputs:
        """Either side: labels, positions and ids are the same photos in the same order."""
        return self.plain if self.plain is not None else self.tta


def collect_seen(model, loader: DataLoader, device, setting: str, preprocessing: dict, amp_dtype=None) -> Seen:
    """`loader`'s photos through `model` as `eval.tta` asks: one crop unless `on`, the views unless `off`.

    Args:
        preprocessing: the checkpoint's (sidecar) preprocessing, the one predict applies.
    """
    if setting not in TTA_SETTINGS:
        raise ValueError(f"eval.tta is one of {', '.join(TTA_SETTINGS)}, not {setting!r}")
    plain = collect_outputs(model, loader, device, amp_dtype) if setting != "on" else None
    views = None
    if setting != "off":
        views = collect_outputs(model, tta_loader(loader, preprocessing), device, amp_dtype, n_views(CROPS))
    return Seen(plain, views)


def tta_loader(loader: DataLoader, preprocessing: dict, crops: int = CROPS) -> DataLoader:
    """`loader`'s photos as their test-time views, about as many network rows a batch as `loader` has photos."""
    from geolocate.data.loaders import make_loader
    from geolocate.data.transforms import eval_tta_transform

    dataset = copy.copy(loader.dataset)  # shallow: the photo lists are shared, only the transform differs
    dataset.transform = eval_tta_transform(preprocessing, crops=crops)
    return make_loader(dataset, max(1, loader.batch_size // n_views(crops)), False, loader.num_workers)


def choose_seen(setting: str, val: Seen, test: Seen, score: Callable[[Outputs], dict]) -> tuple[Outputs, Outputs, dict]:
    """Val's and test's outputs on the side val chose, and the record of the choice.

    Args:
        setting: `eval.tta`.
        score: a val side's `bar_scores` (median_km, p90_km, score; lower score is better),
            called on both sides only when `setting` is auto.
    """
    scores = {side: score(getattr(val, side)) for side in SIDES} if setting == "auto" else {}
    enabled = use_tta(setting, *(scores[side]["score"] for side in SIDES)) if scores else use_tta(setting)
    side = "tta" if enabled else "plain"
    record = {"setting": setting, "enabled": enabled, "crops": CROPS, "views": n_views(CROPS) if enabled else 1, "val": scores}
    return getattr(val, side), getattr(test, side), record
