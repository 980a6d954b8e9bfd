"""`geolocate import` throughput: photos per second, EXIF read, decode check and copy included.

Each run imports the same folder into a fresh data directory (`run_import`: EXIF and GPS parse,
content hash, full JPEG decode check, atomic copy into data/raw, sequence grouping, manifest
write). The folder is the shared real photos (`../shared/real-photos/exif`, 48 files, 1024 px)
repeated `--copies` times under distinct bytes (one appended byte each), or any folder given;
without either, 48 synthetic geotagged 1024×768 photos (`tests/sources/photo_factory.py`).

    .venv/bin/python benchmarks/bench_import.py [--folder DIR] [--copies 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geolocate.acquire.local import run_import  # noqa: E402
from geolocate.config import LocalConfig  # noqa: E402
from geolocate.paths import DataPaths  # noqa: E402

REAL = next((p / "shared/real-photos/exif" for p in ROOT.parents if (p / "shared/real-photos/exif").is_dir()), None)


def build_folder(source: Path, copies: int, out: Path) -> int:
    """`copies` copies of every photo of `source`, each with distinct bytes (so distinct ids)."""
    n = 0
    for k in range(copies):
        for photo in sorted(source.rglob("*.jpg")):
            target = out / f"copy{k}" / photo.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(photo, target)
            with target.open("ab") as handle:
                handle.write(bytes([k % 256]))  # after the JPEG end marker: decoders ignore it
            n += 1
    return n


def synthetic_folder(out: Path, n: int = 48) -> Path:
    """`n` geotagged photos made by code, for machines without the shared real photos."""
    from tests.sources.photo_factory import geotagged

    for i in range(n):
        geotagged(out / f"{i:03d}.jpg", 48.85 + i * 1e-4, 2.35, when=f"2024:05:01 10:{i // 60:02d}:{i % 60:02d}", size=(1024, 768), seed=i)
    return out


def one_run(folder: Path) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        report = run_import(LocalConfig(), DataPaths(Path(tmp)), [folder])
    return len(report.imported) / report.seconds, len(report.imported)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=REAL)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as made:
        folder = args.folder or synthetic_folder(Path(made))
        files = build_folder(folder, args.copies, Path(tmp))
        results = [one_run(Path(tmp)) for _ in range(args.runs)]
    rates = [r for r, _ in results]
    print(f"{files} files, {results[0][1]} imported per run: " + ", ".join(f"{r:.1f}" for r in rates)
          + f" photos/s (median {statistics.median(rates):.1f})")


if __name__ == "__main__":
    main()
