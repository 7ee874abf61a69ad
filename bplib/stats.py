"""Intervals over seeds: how far a mean measured on a few runs can be trusted.

A training run's score depends on its seed (the initial weights, the order of the
batches, which examples were drawn). Run it ``n`` times and the mean of the ``n``
scores has a Student-t confidence interval

    mean ± t_{(1+level)/2, n-1} · s / sqrt(n),

with ``s`` the sample standard deviation. Two procedures run on the same seeds are
compared through the interval of their paired differences.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._validate import as_float_array

__all__ = ["Interval", "confidence_interval", "t_quantile"]


class Interval(NamedTuple):
    """A mean and the ends of its confidence interval (floats, or arrays of them)."""

    mean: float | np.ndarray
    low: float | np.ndarray
    high: float | np.ndarray


def _t_two_sided(t: float, df: int) -> float:
    """P(|T| <= t) for Student's T with an integer number ``df`` of degrees of freedom.

    The finite sums of Abramowitz and Stegun, 26.7.3 and 26.7.4, with
    theta = atan(t / sqrt(df)).
    """
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2 == 1:
        term, total = 1.0, 0.0
        if df > 1:
            total = 1.0
            for k in range(3, df, 2):  # 1 + 2/3 c2 + 2*4/(3*5) c2^2 + ...
                term *= (k - 1) / k * c2
                total += term
            total *= math.sin(theta) * math.cos(theta)
        return 2 / math.pi * (theta + total)
    term = total = 1.0
    for k in range(2, df, 2):  # 1 + 1/2 c2 + 1*3/(2*4) c2^2 + ...
        term *= (k - 1) / k * c2
        total += term
    return math.sin(theta) * total


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom.

    ``df`` is a positive integer (a number of seeds minus one); ``0 < p < 1``.
    Found by bisection on the exact distribution function, to about 1e-12.
    """
    if not isinstance(df, (int, np.integer)) or isinstance(df, bool) or df < 1:
        raise ValueError(f"df must be a positive integer, got {df!r}")
    if not 0 < p < 1:
        raise ValueError(f"p must lie strictly between 0 and 1, got {p!r}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    target = 2 * p - 1  # P(|T| <= t) at the quantile
    lo, hi = 0.0, 1.0
    while _t_two_sided(hi, int(df)) < target:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if _t_two_sided(mid, int(df)) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * max(1.0, hi):
            break
    return (lo + hi) / 2


def confidence_interval(samples, level: float = 0.95, axis: int = -1) -> Interval:
    """The mean of ``samples`` along ``axis`` and its Student-t confidence interval.

    Parameters
    ----------
    samples : array_like
        One score per seed along ``axis`` (at least two seeds).
    level : float
        The coverage, 0.95 for a 95% interval.
    axis : int
        The axis that runs over seeds.

    Returns
    -------
    Interval
        ``(mean, low, high)``: floats for a 1-D input, arrays otherwise.
    """
    x = as_float_array(samples, "samples")
    if x.ndim == 0:
        raise ValueError("samples must hold one score per seed, got a single number")
    n = x.shape[axis]
    if n < 2:
        raise ValueError(f"a confidence interval needs at least two seeds, got {n} "
                         f"along axis {axis} of shape {x.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain NaN or inf")
    mean = x.mean(axis=axis)
    half = t_quantile((1 + level) / 2, n - 1) * x.std(axis=axis, ddof=1) / math.sqrt(n)
    if np.ndim(mean) == 0:
        return Interval(float(mean), float(mean - half), float(mean + half))
    return Interval(mean, mean - half, mean + half)
