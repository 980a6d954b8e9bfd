"""Is the data on disk still the data a run was trained on?

`cells` and `split` can be re-run between training and evaluation (or before `--resume`). A
checkpoint then names classes that no longer match the labels, and evaluating or resuming would
silently measure something else. Runs record the fingerprint of the labels and split (not the
manifest: `clean-raw` and `prepare` change it without changing what a photo's class is).
"""

from __future__ import annotations

from geolocate.errors import UserError
from geolocate.paths import DataPaths


def split_fingerprint(data: DataPaths) -> str:
    """SHA-256 over labels.parquet and split.parquet: what defines classes and splits."""
    from geolocate.artifacts.digest import data_fingerprint

    return data_fingerprint([data.labels, data.split])


def check_same_data(meta: dict, data: DataPaths, cell_ids: list[str], what: str) -> None:
    """Raise a one-line UserError when the classes or the split changed since the run.

    Args:
        meta: the run's checkpoint sidecar.
        data: today's data directory.
        cell_ids: today's classes (sorted cell ids).
        what: the action refused, e.g. "resume run X".
    """
    trained = [c["cell_id"] for c in meta.get("classes", [])]
    if trained != list(cell_ids):
        raise UserError(f"cannot {what}: its {len(trained)} classes differ from today's {len(cell_ids)} cells "
                        "(cells was re-run since); train a new run with `geolocate train`")
    recorded = meta.get("split_fingerprint")
    if recorded and recorded != split_fingerprint(data):
        raise UserError(f"cannot {what}: labels or split changed since it was trained (cells or split was re-run); "
                        "train a new run with `geolocate train`")
