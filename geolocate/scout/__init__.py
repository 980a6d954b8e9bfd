"""The scout-sniper: the second system, in one wing (four views of a location → a region and a position).

Data: `locations` (group manifest photos into four-view locations),
`regions` (region labels, leakage-safe location split, train centroids, the labelled frame); a locations table is
read by `acquire.locations_table`, the views by `data.views`. Learning: `context` (one run's shared state and the scouts' outputs),
`heads` (the system's candidate heads for the shared trainer, `train.system`), `bundle` (what a
run's phases produced, and `combine`), `train` (the phases); the fits themselves, the seeds and
the head choice are the shared stages' (`train/`, `evaluate/choice.py`). Use:
`evaluate` (every phase on val and test), `predict` (the predictor), `release` (what `freeze`
copies). Only `geolocate.cli` and `geolocate.systems` import this package.
"""
