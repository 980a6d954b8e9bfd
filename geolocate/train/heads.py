"""Which head a France v1 run trains: fine-tune, linear probe, or both with the better kept on val.

`model.head` decides; `auto` probes a frozen backbone, tries `train.small_data_heads` below
`train.small_data` train photos, and fine-tunes otherwise (as before heads could be chosen).
A run that tried a probe records its plan and the candidates' val figures in
`head_selection.json`; evaluation copies them into metrics.json and REPORT.md, and `--resume`
reads the plan to continue the same candidates.
"""

from __future__ import annotations

import json

from geolocate import atomic
from geolocate.console import console
from geolocate.train.loop import FitResult, fit

SINGLE_PHOTO_HEADS = ("finetune", "probe")  # in training order: a fine-tune first runs exactly as it always did


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


def train_heads(s, run, heads: list[str], resume: tuple[int, list[dict]] | None = None) -> FitResult:
    """Train each candidate, keep the best on val (median km, then p90) as the run's checkpoint."""
    start_epoch, history = resume or (0, None)
    if heads == ["finetune"]:
        return fit(s, run, start_epoch=start_epoch, history=history)
    if s.dist.is_main:
        write_plan(run, {"candidates": heads, "rows": []})
        console.print(f"head{'s' if len(heads) > 1 else ''}: {', '.join(heads)} (model.head = {s.cfg.model.head})")
    results, net, probe = {}, None, None
    if "finetune" in heads:
        results["finetune"] = fit(s, run, start_epoch=start_epoch, history=history)
    if not s.dist.is_main:
        return results.get("finetune") or FitResult(0, {})
    if "probe" in heads:
        net, probe = _probe(s, fresh=bool(results))
        results["probe"] = FitResult(probe.best_epoch, probe.best_val, probe.history, False, probe.seconds)
    chosen, rows = _choose(results)
    if chosen == "probe":  # a fine-tune's files stay as fit() left them; a probe's replace them
        _save_probe(s, run, net, probe)
    # Written last: a run whose plan names its choice is complete (`--resume` has nothing to do).
    write_plan(run, {"candidates": list(results), "rows": rows, "chosen": chosen})
    return results[chosen]


def _probe(s, fresh: bool):
    """(net, probe) on the untrained backbone: a fresh copy when a fine-tune already changed `s.net`."""
    from geolocate.train.probe import train_probe

    net = _untrained_net(s) if fresh else s.net
    return net, train_probe(s, net)


def _untrained_net(s):
    from geolocate.train.setup import build_net, seed_everything

    seed_everything(s.cfg.train.seed)  # the same backbone the run started from (and the baselines build)
    return build_net(s.cfg, s.classes.height).to(s.dist.device)


def _save_probe(s, run, net, probe) -> None:
    """The probe as the run's checkpoint (last and best) and its epochs as metrics.csv."""
    from geolocate.artifacts.checkpoint import save_checkpoint
    from geolocate.artifacts.rundir import point_latest
    from geolocate.train.checkpointing import checkpoint_meta

    run.write_metrics_rows(probe.history)
    meta = checkpoint_meta(s, probe.best_epoch - 1, probe.best_val, run.run_id)
    first = not run.has_checkpoint
    save_checkpoint(run.last, net, meta)
    save_checkpoint(run.best, net, meta)
    if first:
        point_latest(run.root.parent, run)


def _choose(results: dict[str, FitResult]) -> tuple[str, list[dict]]:
    """The head best on val (median km, then p90) and one row per candidate, each printed."""
    chosen = min(results, key=lambda h: (results[h].best_val["median_km"], results[h].best_val["p90_km"]))
    rows = [{"head": head, "val_median_km": r.best_val["median_km"], "val_p90_km": r.best_val["p90_km"],
             "seconds": round(r.seconds, 2), "chosen": head == chosen} for head, r in results.items()]
    for row in rows:
        console.print(f"head {row['head']:<8} val median {row['val_median_km']:.2f} km, p90 {row['val_p90_km']:.2f} km, "
                      f"{row['seconds']:.1f} s" + ("  ← chosen" if row["chosen"] else ""))
    if len(rows) > 1:
        console.print(f"head chosen on val: [bold]{chosen}[/]")
    return chosen, rows


def write_plan(run, plan: dict) -> None:
    atomic.write_json(run.head_selection, plan)


def read_plan(run) -> dict | None:
    """The run's head plan, or None for a run that only fine-tuned (or predates heads)."""
    path = run.head_selection
    return json.loads(path.read_text()) if path.is_file() else None
