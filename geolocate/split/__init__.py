"""Splits: grouped stratified split, dominance cap, leakage audit; sanity checks."""

from geolocate.split.run import SplitResult, run_split

__all__ = ["SplitResult", "run_split"]
