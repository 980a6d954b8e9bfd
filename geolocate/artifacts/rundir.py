"""A training run's directory, `runs/<run_id>/`, and `runs/latest` pointing at the newest.

Every artifact of a run has its name here (docs/ARCHITECTURE.md, "Run directory"), so training,
evaluation, freeze and export agree without passing paths around. `runs/latest` is a relative
symlink, swapped atomically (a new link under a temporary name, then `os.replace`); where the
file system has no symlinks, a `runs/LATEST` text file holding the run id stands in for it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from geolocate.atomic import temp_name, write_text
from geolocate.errors import UserError
from geolocate.paths import ProjectPaths, safe_name

LATEST_FILE = "LATEST"
_HOW_TO_CREATE = "create one with `geolocate train`"


@dataclass(frozen=True)
class RunDir:
    """The files of one run."""

    root: Path

    @classmethod
    def create(cls, project_paths: ProjectPaths, profile: str | None, now: datetime | None = None,
               latest: bool = True) -> "RunDir":
        """Make a new run directory with a fresh id and, unless `latest` is off, point `runs/latest` at it.

        Training passes `latest=False` and points it after the first checkpoint, so a run killed
        before its first epoch never becomes `runs/latest` (there would be nothing to resume).
        """
        for _ in range(10):  # the random suffix makes a clash unlikely; retry if it happens
            run = cls(project_paths.runs / new_run_id(profile, now))
            try:
                run.root.mkdir(parents=True)
            except FileExistsError:
                continue
            except OSError as exc:
                raise UserError(f"cannot create {run.root}: {exc.strerror}; choose a writable --set paths.runs=...") from None
            if latest:
                point_latest(project_paths.runs, run)
            return run
        raise UserError(f"could not create a new run directory under {project_paths.runs}")

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    def read_config(self):
        """The config this run saved, migrated and validated (`GeolocateConfig`); None when it saved none.

        The one reader of a run's `config.json`: resume, evaluate, judge and the systems seam all ask here.
        """
        from geolocate.config import validate_config

        raw = self._read_json(self.config)
        return None if raw is None else validate_config(raw, self.config)

    def read_metrics(self) -> dict[str, Any] | None:
        """`metrics.json` (evaluate's summary: metrics, gates, promotion); None before evaluation."""
        return self._read_json(self.metrics_json)

    @staticmethod
    def _read_json(path: Path) -> Any:
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{path} is not readable JSON ({exc}); re-run the command that wrote it") from None

    @property
    def has_checkpoint(self) -> bool:
        """Whether an epoch finished (there is a `last` checkpoint to resume from)."""
        return Path(f"{self.last}.json").is_file()

    @property
    def metrics_csv(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def metrics_json(self) -> Path:
        """Final val/test metrics and the gates (`freeze` reads them)."""
        return self.root / "metrics.json"

    @property
    def last(self) -> Path:
        """Stem of the checkpoint of the last epoch (`last.safetensors` + `last.json`)."""
        return self.root / "last"

    @property
    def best(self) -> Path:
        """Stem of the run's best checkpoint (lowest val median km)."""
        return self.root / "best"

    @property
    def state(self) -> Path:
        """Optimizer, scheduler, RNG and epoch for `--resume` (see `state.py`)."""
        return self.root / "state.pt"

    @property
    def head_selection(self) -> Path:
        """France v1's head candidates and their val figures, when a probe was tried (train/heads.py)."""
        return self.root / "head_selection.json"

    @property
    def report(self) -> Path:
        return self.root / "REPORT.md"

    @property
    def confusion_matrix(self) -> Path:
        return self.root / "confusion_matrix.png"

    @property
    def geo_error(self) -> Path:
        return self.root / "geo_error.png"

    @property
    def error_map(self) -> Path:
        """Test cells coloured by their median error (evaluate)."""
        return self.root / "error_map.png"

    @property
    def predictions(self) -> Path:
        """One row per test photo: truth, top-5, predicted position, error km."""
        return self.root / "predictions.parquet"

    @property
    def plots(self) -> list[Path]:
        """The figures a report links and a release ships."""
        return [self.confusion_matrix, self.geo_error, self.error_map]

    def append_metrics_row(self, row: Mapping[str, Any]) -> None:
        """Add one epoch's row to `metrics.csv` (atomic rewrite).

        A row whose `epoch` is already there replaces it, so a resumed run that redoes an epoch
        leaves no duplicate. New columns are appended to the header; older rows leave them empty.
        """
        rows = read_metrics_rows(self.metrics_csv)
        if "epoch" in row:
            rows = [r for r in rows if str(r.get("epoch")) != str(row["epoch"])]
        self.write_metrics_rows([*rows, row])

    def write_metrics_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Replace `metrics.csv` with `rows` (atomic); columns in order of first appearance."""
        rows = [{key: _cell(value) for key, value in row.items()} for row in rows]
        columns = list(dict.fromkeys(key for r in rows for key in r))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.metrics_csv, buffer.getvalue())


def read_metrics_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a `metrics.csv` as dicts of strings ([] when there is none yet)."""
    if not Path(path).is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _cell(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def new_run_id(profile: str | None, now: datetime | None = None) -> str:
    """'20261121-213000-v1-3f2a': UTC time, profile, four random hex digits."""
    now = now or datetime.now(timezone.utc)
    name = safe_name(profile or "default", "profile")
    return f"{now:%Y%m%d-%H%M%S}-{name}-{secrets.token_hex(2)}"


def point_latest(runs: Path, run: RunDir) -> None:
    """Point `runs/latest` at `run`: an atomic symlink swap, else the `LATEST` file."""
    link = runs / "latest"
    tmp = temp_name(link)
    try:
        os.symlink(run.root.name, tmp, target_is_directory=True)
        os.replace(tmp, link)
    except (OSError, NotImplementedError):
        tmp.unlink(missing_ok=True)
        write_text(runs / LATEST_FILE, run.root.name + "\n")
        return
    (runs / LATEST_FILE).unlink(missing_ok=True)  # a leftover from a symlink-less copy would mislead


def resolve_run(ref: str | Path, project_paths: ProjectPaths) -> RunDir:
    """The run `ref` names: "latest", a run id, or a path to a run directory.

    Raises:
        UserError: no such run, saying how to list or create one.
    """
    text = str(ref)
    if text == "latest":
        return _latest(project_paths.runs)
    path = Path(ref)
    if path.is_dir():
        return RunDir(Path(os.path.realpath(path)))  # `runs/latest` → the real run, its id as name
    named = project_paths.runs / safe_name(text, "run id") if "/" not in text else None
    if named is not None and named.is_dir():
        return RunDir(named)
    raise UserError(f"no run {text!r} in {project_paths.runs}/ (ls {project_paths.runs} lists them); {_HOW_TO_CREATE}")


def _latest(runs: Path) -> RunDir:
    link = runs / "latest"
    if link.is_dir():
        return RunDir(Path(os.path.realpath(link)))
    pointer = runs / LATEST_FILE
    if pointer.is_file():
        run = runs / safe_name(pointer.read_text(encoding="utf-8").strip(), "run id")
        if run.is_dir():
            return RunDir(run)
    raise UserError(f"no runs yet in {runs}/ (runs/latest is missing); {_HOW_TO_CREATE}")
