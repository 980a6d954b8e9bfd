"""Moved to `geolocate.train.ensemble` (kept for imports that still name this module)."""

from geolocate.train.ensemble import EnsembleFit, ensemble_logits, fit_ensemble_weights  # noqa: F401
