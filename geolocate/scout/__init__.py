"""The scout-sniper: the second system, in one wing (four views of a location → a region and a position).

Data: `locations` (group manifest photos into four-view locations), `import_csv` (a competition
table), `regions` (region labels, leakage-safe location split, train centroids), `data` (the
views of each location). Learning: `features` (the frozen-backbone feature cache), `context` (one
run's shared state and the scouts' outputs), `heads` (fusion head and sniper fits), `finetune`
(through the images when backbone blocks train), `ensemble` (logit weights fitted on val),
`bundle` (what a run's phases produced, and `combine`), `train` (the phases), `seeds`. Use:
`evaluate` (every phase on val and test), `predict` (the predictor), `release` (what `freeze`
copies). Only `geolocate.cli` and `geolocate.systems` import this package.
"""
