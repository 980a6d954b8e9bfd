"""`geolocate sanity`: is the data set fit to train on? Every check, every violation, one table.

Checks: photos exist and decode, the per-cell minimum, labels consistent with the manifest and
the cells, split consistent with the labels, zero sequence leakage, the dominance cap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from geolocate.manifest import read_manifest
from geolocate.cells.recorded import UPSTREAM, judged_config
from geolocate.config import AUTO, GeolocateConfig
from geolocate.errors import UserError
from geolocate.paths import DataPaths
from geolocate.schemas import CELLS, LABELS, SPLIT, SPLITS, conform
from geolocate.split.grouped import sequence_key
from geolocate.split.photos import check_photos

# Shares are compared with this slack so a cap met exactly is not a float-rounding violation.
_SHARE_EPS = 1e-9


@dataclass
class Check:
    """One line of the sanity table."""

    name: str
    ok: bool
    detail: str


@dataclass
class SanityReport:
    """All checks; `violations` lists the failed ones."""

    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, problems: list[str], fine: str) -> None:
        self.checks.append(Check(name, not problems, "; ".join(problems) if problems else fine))

    @property
    def violations(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.violations

    def raise_for_violations(self, prefix: str = "") -> None:
        """Raise one UserError (exit code 1) listing every violation; do nothing when all pass.

        Args:
            prefix: put before the count, e.g. "sanity failed: " where the context needs naming.
        """
        if self.violations:
            raise UserError(f"{prefix}{len(self.violations)} violation(s): " + " | ".join(self.violations), exit_code=1)


def _examples(ids: list[str], k: int = 3) -> str:
    shown = ", ".join(ids[:k])
    return f"{shown}, …" if len(ids) > k else shown


def _read(path, schema) -> pl.DataFrame | None:
    if not path.exists():
        return None
    try:
        return conform(pl.read_parquet(path), schema)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise UserError(f"cannot read {path} ({exc}); run the step that writes it again") from None


def run_sanity(cfg: GeolocateConfig, data: DataPaths, quick: bool = False, given: Iterable[str] = ()) -> SanityReport:
    """Run every check on the data directory; never raises for a violation (see `violations`).

    The tables are judged by the settings `cells` and `split` recorded when they built them
    (`cells.recorded`), not by the config's defaults.

    Args:
        cfg: resolved config (`cells.min_samples`, `cells.max_dominance`, `split.max_near_share`).
        data: the data directory.
        quick: only check that photos exist, without decoding them.
        given: the dotted keys set on the command line.

    Raises:
        UserError: a given key contradicts a recorded setting.
    """
    cfg = judged_config(cfg, data, UPSTREAM["sanity"], given)
    report = SanityReport()
    manifest = read_manifest(data, required=True, columns=["image_id", "sequence_id", "path", "processed_path", "parent_id"])
    _photos(report, manifest, data, quick)
    cells, labels, split = _read(data.cells, CELLS), _read(data.labels, LABELS), _read(data.split, SPLIT)
    if cells is None or labels is None:
        report.add("cells", [f"no {data.cells if cells is None else data.labels}; run `geolocate cells`"], "")
        return report
    _cells(report, cells, labels, manifest, cfg.cells.min_samples)
    if split is None:
        report.add("split", [f"no {data.split}; run `geolocate split`"], "")
        return report
    _split(report, split, labels, cells, _downsampled(data))
    frame = split.join(labels, on="image_id", how="inner").join(manifest.select("image_id", "sequence_id"), on="image_id", how="left")
    _leakage(report, frame)
    _near_duplicates(report, _split_report(data), cfg.split.max_near_share)
    _dominance(report, frame, cfg.cells.max_dominance)
    return report


def _photos(report: SanityReport, manifest: pl.DataFrame, data: DataPaths, quick: bool) -> None:
    found = check_photos(manifest, data, decode=not quick)
    report.add("photos exist", [f"{len(found.missing)} missing ({_examples(found.missing)})"] if found.missing else [],
               f"{found.checked:,} photos present{_why_more(manifest)}")
    if quick:
        report.checks.append(Check("photos decode", True, "skipped (--quick)"))
    else:
        report.add("photos decode", [f"{len(found.corrupt)} do not decode ({_examples(found.corrupt)})"] if found.corrupt else [],
                   f"all {found.checked - len(found.missing):,} present photos decode")


def _why_more(manifest: pl.DataFrame) -> str:
    """Why the files outnumber the photos `cells` labels: the 360° captures cut into views stay on disk."""
    cut = manifest["parent_id"].drop_nulls().n_unique()
    if not cut:
        return ""
    return f": {manifest.height - cut:,} to train on and the {cut:,} 360° captures their views were cut from"


def _cells(report: SanityReport, cells: pl.DataFrame, labels: pl.DataFrame, manifest: pl.DataFrame, minimum: int | str) -> None:
    counts = labels.group_by("cell_id").agg(n=pl.len())
    if minimum == AUTO:  # tables from before `cells` recorded its settings
        report.add("cell minimum", ["no recorded class minimum (cells.min_samples = auto); run `geolocate cells` again"], "")
    else:
        small = counts.filter(pl.col("n") < minimum).sort("cell_id")["cell_id"].to_list()
        report.add("cell minimum", [f"{len(small)} cells under {minimum} photos ({_examples(small)})"] if small else [],
                   f"{cells.height} cells, smallest {counts['n'].min() or 0} photos (minimum {minimum}, as `cells` ran)")
    problems = []
    unknown_photos = labels.join(manifest, on="image_id", how="anti")["image_id"].to_list()
    if unknown_photos:
        problems.append(f"{len(unknown_photos)} labelled photos not in the manifest ({_examples(unknown_photos)})")
    unknown_cells = counts.join(cells, on="cell_id", how="anti")["cell_id"].to_list()
    if unknown_cells:
        problems.append(f"{len(unknown_cells)} label cells not in cells.parquet ({_examples(unknown_cells)})")
    stale = cells.join(counts, on="cell_id", how="left").filter(pl.col("n").fill_null(0) != pl.col("n_images"))
    if stale.height:
        problems.append(f"{stale.height} cells whose n_images disagrees with labels.parquet; run `geolocate cells`")
    report.add("labels", problems, f"{labels.height:,} labelled photos consistent with cells and manifest")


def _split_report(data: DataPaths) -> dict:
    """split_report.json, or {} when it is missing or unreadable."""
    try:
        report = json.loads(data.split_report.read_text())
    except (OSError, ValueError):
        return {}
    return report if isinstance(report, dict) else {}


def _downsampled(data: DataPaths) -> int | None:
    """Train rows the dominance cap and the spatial buffer left out, per split_report.json (None when unknown)."""
    try:
        report = _split_report(data)
        return int(report["dominance"]["downsampled_rows"]) + int(report.get("buffer_dropped") or 0)
    except (KeyError, TypeError, ValueError):
        return None


def _split(report: SanityReport, split: pl.DataFrame, labels: pl.DataFrame, cells: pl.DataFrame, downsampled: int | None) -> None:
    problems = []
    if split["image_id"].is_duplicated().any():
        problems.append("photos listed twice in split.parquet")
    bad = split.filter(~pl.col("split").is_in(list(SPLITS))).height
    if bad:
        problems.append(f"{bad} rows with a split other than {'/'.join(SPLITS)}")
    unlabelled = split.join(labels, on="image_id", how="anti").height
    if unlabelled:
        problems.append(f"{unlabelled} split photos have no label; run `geolocate split` again")
    left_out = labels.join(split, on="image_id", how="anti").height
    if downsampled is not None and left_out != downsampled:
        problems.append(f"{left_out} labelled photos not in the split but the report left out {downsampled}; run `geolocate split` again")
    trained = split.filter(pl.col("split") == "train").join(labels, on="image_id")["cell_id"].unique()
    untrained = cells.filter(~pl.col("cell_id").is_in(trained.implode()))["cell_id"].to_list()
    if untrained:
        problems.append(f"{len(untrained)} classes without a train photo ({_examples(untrained)})")
    # Evaluation reads val (model selection) and test (the reported figures): neither may be empty.
    empty_splits = [s for s in SPLITS if split.filter(pl.col("split") == s).is_empty()]
    if empty_splits:
        problems.append(f"{'/'.join(empty_splits)} empty; every split needs photos: fetch more or raise split.val/split.test")
    sizes = ", ".join(f"{s} {split.filter(pl.col('split') == s).height:,}" for s in SPLITS)
    report.add("split", problems, sizes)


def _leakage(report: SanityReport, frame: pl.DataFrame) -> None:
    shared = (
        frame.with_columns(seq=sequence_key()).group_by("seq").agg(k=pl.col("split").n_unique())
        .filter(pl.col("k") > 1).sort("seq")["seq"].to_list()
    )
    report.add("sequence leakage", [f"{len(shared)} sequences in more than one split ({_examples(shared)})"] if shared else [],
               "0 sequences shared across splits")


def _near_duplicates(report: SanityReport, split_report: dict, max_share: float) -> None:
    """Test photos with a train photo of another sequence a few metres away: the model may remember, not locate."""
    near = (split_report.get("leakage") or {}).get("near_duplicates")
    if not isinstance(near, dict) or "share" not in near:
        report.add("near duplicates", ["no leakage audit in split_report.json; run `geolocate split` again"], "")
        return
    share, hits, n = float(near["share"]), near.get("with_train_neighbour", 0), near.get("test_photos", 0)
    problem = [
        f"{hits} of {n} test photos ({share:.1%}) have a train photo of another sequence within {near.get('near_m', '?')} m, "
        f"above {max_share:.0%} (split.max_near_share): group captures by sequence (a `group` column for import-locations), "
        "split by drive (--set split.group_by=drive) or drop train photos next to them (--set split.buffer=true)"
    ] if share > max_share + _SHARE_EPS else []
    report.add("near duplicates", problem, f"{share:.1%} of test photos have a near train photo (max {max_share:.0%})")


def _dominance(report: SanityReport, frame: pl.DataFrame, cap: float) -> None:
    train = frame.filter(pl.col("split") == "train")
    if train.is_empty():
        report.add("dominance cap", ["train is empty"], "")
        return
    top = train.group_by("cell_id").agg(n=pl.len()).sort(["n", "cell_id"], descending=[True, False]).row(0)
    share = top[1] / train.height
    problem = [f"class {top[0]} holds {share:.1%} of train, above the {cap:.0%} cap"] if share > cap + _SHARE_EPS else []
    report.add("dominance cap", problem, f"largest class {share:.1%} of train (cap {cap:.0%})")
