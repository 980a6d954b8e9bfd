"""Quantiles of val errors that weigh every error: the Harrell–Davis estimator.

On 12–19 val places a plain p90 is one place's error (numpy interpolates between the two order
statistics around it), and the median one or two: a choice ranked by them sees nothing of the
other places. Harrell and Davis (Biometrika, 1982) estimate the q-quantile as a weighted mean of
all order statistics, the weights the Beta((n + 1)q, (n + 1)(1 − q)) probability of each 1/n
slice; it tends to the plain quantile as n grows. On a dozen errors the median estimate varies a
little less than the plain median, and the p90 estimate gives the errors beyond the 90th
percentile weight too (it varies *more* on heavy tails, because the worst error counts): a
candidate that sends a few photos very far pays for it even when they sit past the plain p90's
order statistics. Numpy and the standard library only: the regularised incomplete beta by its
continued fraction (Lentz's method).
"""

from __future__ import annotations

import functools
import math

import numpy as np

_MAX_TERMS = 300
_EPS = 1e-14
_TINY = 1e-300


def _beta_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz), converging for x < (a + 1) / (a + b + 2)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    fraction = d
    for m in range(1, _MAX_TERMS + 1):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            fraction *= c * d
        if abs(c * d - 1.0) < _EPS:
            break
    return fraction


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the Beta(a, b) distribution function at x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = a * math.log(x) + b * math.log1p(-x) + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(1.0 - x, b, a) / b


@functools.lru_cache(maxsize=64)
def _weights(n: int, q: float) -> np.ndarray:
    """[n] weight of each order statistic: a val split is scored for every candidate with the same n."""
    a, b = q * (n + 1), (1.0 - q) * (n + 1)
    weights = np.diff([regularized_beta(i / n, a, b) for i in range(n + 1)])
    weights.flags.writeable = False
    return weights


def harrell_davis(values, q: float) -> float:
    """The Harrell–Davis estimate of the `q`-quantile (0 < q < 1) of `values` (NaN when empty)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"a Harrell–Davis quantile is strictly between 0 and 1, not {q!r}")
    ordered = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if not len(ordered):
        return float("nan")
    weights = _weights(len(ordered), float(q))
    used = weights > 0.0  # an infinite error whose weight underflowed to 0 must not make the estimate NaN
    return float(weights[used] @ ordered[used])
