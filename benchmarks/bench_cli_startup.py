"""Benchmark: CLI start-up, `geolocate --help` and every `geolocate <command> --help`.

    .venv/bin/python benchmarks/bench_cli_startup.py [--runs 10] [--command-runs 3] [--quick]

Targets: `geolocate --help` under 0.5 s wall on the 2-core machine (issue 2), then ≤ 0.2 s and
≤ 3× `python -c "import typer"` (issue 18): medians of `--runs` fresh processes through the
installed console script. For reference the same is timed for `import typer`,
`python -c "import torch"` and a bare `python -c pass`, interleaved with it. Then
each command's `--help` is timed (median of `--command-runs`) and checked in-process for heavy
imports (torch, timm, transformers, matplotlib must not load for `--help`; polars,
numpy, h3 and httpx are listed too since they cost start-up time); the table lists the
commands slowest first. Last, the largest cumulative imports of `geolocate --help`
(`python -X importtime`) show what its start-up is made of.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

GEOLOCATE = Path(sys.executable).with_name("geolocate")
TYPER = "`python -c \"import typer\"`"
HEAVY = ("torch", "timm", "transformers", "matplotlib", "torchvision", "safetensors", "sklearn", "skimage", "polars", "numpy", "h3", "httpx")


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds from spawn to exit of `cmd`, and its CPU seconds (user + sys, from wait4).

    CPU time barely depends on how busy the machine is: on an idle machine a single-threaded
    start-up takes about its CPU time of wall time.
    """
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({status}): {' '.join(cmd)}")
    return time.perf_counter() - t, usage.ru_utime + usage.ru_stime


def command_names() -> list[str]:
    """Every top-level command registered on the Typer app, in --help order."""
    import typer

    from geolocate.cli import app

    return list(typer.main.get_command(app).commands)


def heavy_modules(argv: list[str]) -> list[str]:
    """Run `geolocate <argv>` in a fresh interpreter; the heavy modules it imported."""
    code = (
        "import sys\nfrom geolocate.cli import main\nsys.argv = ['geolocate', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True).stdout
    found = re.findall(r"^HEAVY=(.*)$", out, re.M)
    return [m for m in found[-1].split(",") if m] if found else ["(no answer)"]


def top_imports(n: int = 8) -> list[tuple[str, float]]:
    """The `n` largest cumulative import times (ms) of `geolocate --help`, from -X importtime."""
    code = "import sys\nfrom geolocate.cli import main\nsys.argv = ['geolocate', '--help']\ntry:\n    main()\nexcept SystemExit:\n    pass"
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True).stderr
    rows = []
    for line in err.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(2)) <= 3:  # top-level and first-level imports only
            rows.append((m.group(3), int(m.group(1)) / 1000))
    return sorted(rows, key=lambda r: -r[1])[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="Runs of `geolocate --help` and the references.")
    parser.add_argument("--command-runs", type=int, default=3, help="Runs of each `geolocate <command> --help`.")
    parser.add_argument("--quick", action="store_true", help="3 runs, 1 per command.")
    parser.add_argument("--no-commands", action="store_true", help="Only `geolocate --help` and the references.")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.command_runs = 3, 1
    refs = {"`geolocate --help`": [str(GEOLOCATE), "--help"],
            TYPER: [sys.executable, "-c", "import typer"],
            "`python -c \"import torch\"`": [sys.executable, "-c", "import torch"],
            "`python -c pass`": [sys.executable, "-c", "pass"]}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in refs}
    for _ in range(args.runs):  # interleaved, so load changes hit every line alike
        for label, cmd in refs.items():
            times[label].append(timed(cmd))
    commands = {}
    for name in [] if args.no_commands else command_names():
        runs = [timed([str(GEOLOCATE), name, "--help"]) for _ in range(args.command_runs)]
        commands[name] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
                          heavy_modules([name, "--help"]))
        print(f"{name}: {json.dumps(commands[name])}", file=sys.stderr)
    load = os.getloadavg()
    print(f"{args.runs} interleaved runs; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end\n")
    print("| process | wall (median) | min | max | CPU user+sys (median) |\n| --- | --- | --- | --- | --- |")
    for label, ts in times.items():
        walls = [w for w, _ in ts]
        print(f"| {label} | {statistics.median(walls):.3f} s | {min(walls):.3f} s | {max(walls):.3f} s "
              f"| {statistics.median(c for _, c in ts):.3f} s |")
    help_wall = statistics.median(w for w, _ in times["`geolocate --help`"])
    ratio = help_wall / statistics.median(w for w, _ in times[TYPER])
    cpu_ratio = statistics.median(c for _, c in times["`geolocate --help`"]) / statistics.median(c for _, c in times[TYPER])
    print(f"\n`geolocate --help`: **{help_wall:.3f} s** (target ≤ 0.2 s: {'met' if help_wall <= 0.2 else 'MISSED'}); "
          f"**{ratio:.2f}×** `import typer` wall, {cpu_ratio:.2f}× CPU (target ≤ 3×: {'met' if ratio <= 3 else 'MISSED'})\n")
    print(f"| command `--help` (slowest first) | wall (median of {args.command_runs}) | CPU user+sys | heavy modules imported |\n| --- | --- | --- | --- |")
    for name, (t, cpu, heavy) in sorted(commands.items(), key=lambda kv: -kv[1][0]):
        print(f"| `geolocate {name} --help` | {t:.3f} s | {cpu:.3f} s | {', '.join(heavy) or 'none'} |")
    print("\n| import (cumulative, one `-X importtime` run of `geolocate --help`) | ms |\n| --- | --- |")
    for module, ms in top_imports():
        print(f"| {module} | {ms:.0f} |")


if __name__ == "__main__":
    main()
