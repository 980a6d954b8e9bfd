"""Synthetic street-level photos with the manifest schema: the offline demo's and the tests' data.

`world` (the appearance field over lat/lon) → `drives` (where and when photos are taken) →
`street` (a street's 3-D primitives) → `scene` (camera, drawing, photo noise) → `generate`
(`run_synth`: parallel rendering and the manifest rows).
"""

from geolocate.synth.generate import SynthReport, resolve_settings, run_synth

__all__ = ["SynthReport", "resolve_settings", "run_synth"]
