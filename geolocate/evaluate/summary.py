"""From logits to the headline numbers (accuracy and km) of one split, during training."""

from __future__ import annotations

import numpy as np

from geolocate.evaluate.collect import Outputs
from geolocate.evaluate.position import score_split


def summarise(outputs: Outputs, centroids: np.ndarray) -> dict:
    """Top-1/top-5 accuracy and km metrics, with the top-1 cell centroid as the position.

    Logits rank classes as probabilities do, so they serve directly (no softmax per epoch).
    """
    truth = np.stack([outputs.lat, outputs.lon], axis=1)
    return score_split(outputs.logits, outputs.labels, truth, centroids, "top1").metrics
