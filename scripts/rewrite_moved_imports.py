"""Rewrite imports of modules the "one house" refactor moved (issue 12); safe to run again.

For a branch written before the move: run it from the repository root after rebasing, and it
`git mv`s any file still at an old place and rewrites every dotted module name and slash path in
geolocate/, tests/, benchmarks/, scripts/ and docs/ to the new one. It only edits text; read the
diff before committing.

    python scripts/rewrite_moved_imports.py
"""

from __future__ import annotations

import pathlib
import re
import subprocess

MOVES = {
    "geolocate.views.locations": "geolocate.scout.locations",
    "geolocate.views.regions": "geolocate.scout.regions",
    "geolocate.views.import_csv": "geolocate.scout.import_csv",
    "geolocate.train.scout_bundle": "geolocate.scout.bundle",
    "geolocate.train.scout_data": "geolocate.scout.data",
    "geolocate.train.scout_eval": "geolocate.scout.evaluate",
    "geolocate.train.scout_finetune": "geolocate.scout.finetune",
    "geolocate.train.scout_heads": "geolocate.scout.heads",
    "geolocate.train.scout_seeds": "geolocate.scout.seeds",
    "geolocate.train.scout_sniper": "geolocate.scout.train",
    "geolocate.train.scout_synthetic": "geolocate.scout.synthetic",
    "geolocate.train.features": "geolocate.models.features",
    "geolocate.scout.features": "geolocate.models.features",  # shared by both systems (issue 13)
    "geolocate.inference.multiview": "geolocate.scout.predict",
    "geolocate.evaluate.ensemble": "geolocate.scout.ensemble",
    "geolocate.train.consistency": "geolocate.artifacts.consistency",
    "geolocate.artifacts.lock": "geolocate.lock",
    "geolocate.views": "geolocate.scout",  # the package itself (its __init__)
}
# Names that moved between modules after the files did.
TEXT = {
    "from geolocate.train import scout_sniper": "from geolocate.scout import train as scout_sniper",
    "from geolocate.train import features": "from geolocate.models import features",
    "from geolocate.scout import features": "from geolocate.models import features",
    "from geolocate.artifacts import lock\n": "from geolocate import lock\n",
    "from geolocate.scout.train import PhaseContext": "from geolocate.scout.context import PhaseContext",
    "from geolocate.scout.train import build_scout": "from geolocate.scout.context import build_scout",
    "from geolocate.scout.train import scout_outputs": "from geolocate.scout.context import scout_outputs",
    "from geolocate.scout.train import ScoutRunSummary": "from geolocate.train.run import RunSummary as ScoutRunSummary",
    "from geolocate.split.photos import decodes": "from geolocate.data.images import decodes",
    "from geolocate.models.weights import export_weights": "from geolocate.models.registry import export_weights",
    "mean_position": "spherical_mean",
}
FOLDERS = ("geolocate", "tests", "benchmarks", "scripts", "docs")
SUFFIXES = (".py", ".md", ".toml", ".txt", ".cfg")


def _path_of(module: str, package: bool = False) -> pathlib.Path:
    stem = module.replace(".", "/")
    return pathlib.Path(f"{stem}/__init__.py" if package else f"{stem}.py")


def move_files() -> None:
    pathlib.Path("geolocate/scout").mkdir(exist_ok=True)
    for old, new in MOVES.items():
        package = old == "geolocate.views"
        source, target = _path_of(old, package), _path_of(new, package)
        if source.exists() and not target.exists():
            subprocess.run(["git", "mv", str(source), str(target)], check=True)


def rewrite(text: str) -> str:
    for old, new in sorted(MOVES.items(), key=lambda item: -len(item[0])):  # longest first
        text = re.sub(re.escape(old) + r"(?!\w)", new, text)
        text = re.sub(re.escape(old.replace(".", "/")) + r"(?=\.py|/|\b)", new.replace(".", "/"), text)
    for old, new in TEXT.items():
        text = text.replace(old, new)
    return text


def main() -> None:
    move_files()
    for folder in FOLDERS:
        for path in sorted(pathlib.Path(folder).rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES and path.name != pathlib.Path(__file__).name:
                text = path.read_text(encoding="utf-8")
                if rewrite(text) != text:
                    path.write_text(rewrite(text), encoding="utf-8")
                    print("rewrote", path)


if __name__ == "__main__":
    main()
