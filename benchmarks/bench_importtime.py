"""Benchmark: the `python -X importtime` budget of `geolocate --help` and of a cold `geolocate predict`.

    .venv/bin/python benchmarks/bench_importtime.py [--checkpoint STEM] [--photo PHOTO] [--runs 5]

Import time is what the CLI adds to a command's start-up, so it is budgeted here rather than in a
timed test (a test's timing would fail on a loaded machine; a module list does not):
- `geolocate --help` may import nothing beyond typer, rich and the CLI's own root (`BUDGET`), and
  its total import time must stay within `HELP_TYPER_RATIO` × that of `import typer`, both taken
  as medians of `--runs` `-X importtime` runs interleaved in this run;
- a cold `geolocate predict` on a checkpoint with an ONNX graph must not import the modules in
  `BUDGET["predict"]` (torch, the data-frame and plotting stacks, the config's pydantic tree).
The script prints each budget with the modules over it, the number of modules imported (exact,
unlike the times, which swing with the machine's load) and the largest imports, and exits 1 when
a budget is exceeded. The checkpoint defaults to resnet18 made by `bench_predict.py --make`.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTO = next(iter(sorted(Path("/work/shared/real-photos/osv5m").glob("*.jpg"))), None)
# Typer's rich help (typer.rich_utils → rich.markdown → markdown_it) costs about as much as typer
# itself, so a rich --help costs ~2× `import typer` before geolocate adds anything; 2.5× leaves
# geolocate's root (console, errors, the lazy group) a quarter of typer.
HELP_TYPER_RATIO = 2.5
# Top-level packages a command must not import (a prefix matches submodules too).
BUDGET = {
    "--help": ("pydantic", "numpy", "polars", "torch", "PIL", "h3", "httpx", "geolocate.config", "geolocate.paths",
               "geolocate.cli.fetch", "geolocate.cli.predict"),
    "predict": ("torch", "torchvision", "timm", "polars", "matplotlib", "pandas", "sklearn", "pydantic", "fastapi"),
}
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def importtime(argv: list[str]) -> dict[str, tuple[int, int]]:
    """{module: (self µs, cumulative µs)} of one `python -X importtime` run of `argv`."""
    err = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, env=ENV,
                         stdin=subprocess.DEVNULL).stderr
    rows = {}
    for line in err.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)", line)
        if m:
            rows[m.group(3)] = (int(m.group(1)), int(m.group(2)))
    return rows


def over(modules: dict, forbidden: tuple[str, ...]) -> list[str]:
    return sorted({f for f in forbidden for m in modules if m == f or m.startswith(f + ".")})


def largest(modules: dict, n: int = 6) -> str:
    top = sorted(((cum, m) for m, (_, cum) in modules.items() if "." not in m or m.startswith("geolocate.")), reverse=True)[:n]
    return ", ".join(f"{m} {cum / 1000:.0f} ms" for cum, m in top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="Checkpoint stem with an ONNX graph (default: make resnet18).")
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-importtime-") as tmp:
        stem = args.checkpoint
        if stem is None:
            stem = Path(tmp) / "model"
            subprocess.run([sys.executable, str(ROOT / "benchmarks/bench_predict.py"), "--make", str(stem)], check=True, env=ENV)
        argvs = {"--help": ["-m", "geolocate", "--help"], "import typer": ["-c", "import typer"],
                 "predict": ["-m", "geolocate", "predict", str(args.photo), "--checkpoint", str(stem) + ".safetensors"]}
        runs: dict[str, list[dict]] = {k: [] for k in argvs}
        for _ in range(args.runs):  # interleaved
            for name, argv in argvs.items():
                runs[name].append(importtime(argv))
    total = {k: statistics.median(sum(s for s, _ in r.values()) for r in rs) for k, rs in runs.items()}
    ratio = total["--help"] / total["import typer"]
    failed = []
    load = os.getloadavg()[0]
    print(f"{args.runs} interleaved `-X importtime` runs of each; load average {load:.1f} at the end\n")
    print("| process | import time (median of the sum of self times) | modules imported | modules over budget | largest imports (cumulative) |")
    print("| --- | --- | --- | --- | --- |")
    for name in argvs:
        bad = over(runs[name][-1], BUDGET.get(name, ()))
        failed += [f"{name}: {m}" for m in bad]
        print(f"| {name} | {total[name] / 1000:.0f} ms | {len(runs[name][-1])} | {', '.join(bad) or 'none'} | {largest(runs[name][-1])} |")
    print(f"\n`--help` imports / `import typer`: **{ratio:.2f}×** (budget ≤ {HELP_TYPER_RATIO}×)")
    if ratio > HELP_TYPER_RATIO:
        failed.append(f"--help import time {ratio:.2f}× import typer")
    print("budget: " + ("within" if not failed else "**EXCEEDED**: " + "; ".join(failed)))
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
