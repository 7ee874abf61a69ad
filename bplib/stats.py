"""Intervals over seeds: how far a mean measured on a few runs can be trusted.

A training run's score depends on its seed (the initial weights, the order of the
batches, which examples were drawn). Run it ``n`` times and the mean of the ``n``
scores has a Student-t confidence interval

    mean ± t_{(1+level)/2, n-1} · s / sqrt(n),

with ``s`` the sample standard deviation. Two procedures run on the same seeds are
compared through the interval of their paired differences.

When every run is scored on the same fixed test set, the seeds are not the only
chance in the result: another draw of test examples would give other scores.
:func:`two_way_interval` counts both, from the table of scores ``[seed, example]``.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from ._validate import as_float_array

__all__ = ["Interval", "confidence_interval", "t_quantile", "two_way_interval"]


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
    return _t_quantile(float(p), int(df))


@functools.lru_cache(maxsize=256)
def _t_quantile(p: float, df: int) -> float:
    if p < 0.5:
        return -_t_quantile(1 - p, df)
    target = 2 * p - 1  # P(|T| <= t) at the quantile
    lo, hi = 0.0, 1.0
    while _t_two_sided(hi, df) < target:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if _t_two_sided(mid, df) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * max(1.0, hi):
            break
    return (lo + hi) / 2


def _require_level_and_finite(level: float, x: np.ndarray, name: str) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contain NaN or inf")


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
    _require_level_and_finite(level, x, "samples")
    mean = x.mean(axis=axis)
    half = t_quantile((1 + level) / 2, n - 1) * x.std(axis=axis, ddof=1) / math.sqrt(n)
    if np.ndim(mean) == 0:
        return Interval(float(mean), float(mean - half), float(mean + half))
    return Interval(mean, mean - half, mean + half)


def two_way_interval(scores, level: float = 0.95) -> Interval:
    """The mean of ``scores[s, i]`` and an interval for both seeds and test examples.

    ``scores[s, i]`` is the score of the run with seed ``s`` on test example ``i``: 1 or
    0 for right or wrong (the mean is then the accuracy), or the difference of two such
    tables for two procedures run on the same seeds and examples. Seeds and examples are
    both taken as random draws, with two crossed random effects,
    ``scores[s, i] = mu + a_s + b_i + e_si``, so the mean has the variance

        Var = sigma_a^2 / S + sigma_b^2 / I + sigma_e^2 / (S I).

    The three variances come from the mean squares of a two-way analysis of variance
    (``MS_seeds = I s^2_seeds``, with ``s^2_seeds`` the variance, ``ddof=1``, of the
    ``S`` per-seed means; ``MS_examples = S s^2_examples`` likewise; ``MS_residual``),
    a negative estimate counting as 0:

        S I Var = MS_residual + max(0, MS_seeds - MS_residual)
                              + max(0, MS_examples - MS_residual).

    The interval is ``mean ± t · sqrt(Var)``, the t quantile taken at Satterthwaite's
    degrees of freedom rounded down. With every example scored alike it is
    :func:`confidence_interval` of the per-seed means.

    Parameters
    ----------
    scores : array_like, shape (S, I)
        ``S >= 2`` seeds (rows) by ``I >= 2`` test examples (columns).
    level : float
        The coverage, 0.95 for a 95% interval.

    Returns
    -------
    Interval
        ``(mean, low, high)`` as floats.
    """
    x = as_float_array(scores, "scores").astype(np.float64)
    if x.ndim != 2 or min(x.shape) < 2:
        raise ValueError(f"scores must be 2-D, seeds by test examples, with at least two "
                         f"of each, got shape {x.shape}")
    _require_level_and_finite(level, x, "scores")
    S, I = x.shape
    mean = x.mean()
    seed_means, example_means = x.mean(axis=1), x.mean(axis=0)
    residual = x - seed_means[:, None] - example_means + mean
    ms_seeds, ms_examples = I * seed_means.var(ddof=1), S * example_means.var(ddof=1)
    ms_residual = np.sum(residual**2) / ((S - 1) * (I - 1))
    # S I Var = sum of coefficient * mean square; a component estimated negative is 0
    parts = [(ms, df) for ms, df in [(ms_seeds, S - 1), (ms_examples, I - 1)]
             if ms > ms_residual]
    terms = [(1.0, ms, df) for ms, df in parts]
    terms.append((1.0 - len(parts), ms_residual, (S - 1) * (I - 1)))
    total = sum(c * ms for c, ms, _ in terms)
    if total <= 0:  # every score alike
        return Interval(float(mean), float(mean), float(mean))
    df = total**2 / sum((c * ms) ** 2 / d for c, ms, d in terms)  # Satterthwaite
    df = max(1, int(df + 1e-9))  # rounded down, but not below an integer it equals
    half = t_quantile(0.5 + level / 2, df) * math.sqrt(total / (S * I))
    return Interval(float(mean), float(mean - half), float(mean + half))
