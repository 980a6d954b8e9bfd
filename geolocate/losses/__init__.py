"""Training losses: class weights, the geo loss (haversine label smoothing), the haversine loss."""

from geolocate.losses.class_weights import class_weights, imbalance_ratio, resolve_class_weights
from geolocate.losses.geo_loss import GeoLoss, build_criterion, geo_soft_targets
from geolocate.losses.haversine import HaversineLoss, haversine_km_torch, pairwise_haversine_km_torch

__all__ = [
    "GeoLoss",
    "HaversineLoss",
    "build_criterion",
    "class_weights",
    "geo_soft_targets",
    "haversine_km_torch",
    "imbalance_ratio",
    "pairwise_haversine_km_torch",
    "resolve_class_weights",
]
