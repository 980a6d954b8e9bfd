"""Settings shared by the ops tests: a CPU-sized batch and gates a tiny run can pass."""

from __future__ import annotations

# CPU-sized: 600 photos of 64 px, two short epochs. The median gate is set out of reach so that
# the batch's run fails its gates (freeze must refuse it); the other gates keep their tiny values.
BATCH_SETS = [
    "synth.n_photos=600", "synth.size=64", "train.epochs=2", "train.max_steps_per_epoch=3",
    "eval.gates.median_km_max=0.001",
]
LOOSE_GATES = [
    "eval.gates.accuracy_min=0.0", "eval.gates.median_km_max=100000.0",
    "eval.gates.p90_km_max=100000.0", "eval.gates.max_std_km=100000.0",
    "eval.gates.beat_baselines=false",  # three training steps need not beat the majority class
]


def options(sets: list[str]) -> list[str]:
    """`--profile tiny --set a --set b …`."""
    return ["--profile", "tiny", *[arg for item in sets for arg in ("--set", item)]]
