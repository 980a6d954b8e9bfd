"""From logits to the headline numbers (accuracy and km) of one split, during training."""

from __future__ import annotations

import numpy as np

from geolocate.evaluate.collect import Outputs
from geolocate.evaluate.metrics import geo_metrics
from geolocate.evaluate.position import position_errors_km, top1_positions


def summarise(outputs: Outputs, centroids: np.ndarray) -> dict:
    """Top-1/top-5 accuracy and km metrics, with the top-1 cell centroid as the position."""
    pos = top1_positions(outputs.logits, centroids)
    err = position_errors_km(pos, np.stack([outputs.lat, outputs.lon], axis=1))
    return geo_metrics(err, outputs.logits, outputs.labels)
