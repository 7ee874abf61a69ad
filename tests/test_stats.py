"""bplib.stats: Student-t quantiles and intervals over seeds, checked against scipy."""

from __future__ import annotations

import numpy as np
import pytest

from bplib import Interval, confidence_interval
from bplib.stats import t_quantile

scipy_stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 9, 10, 29, 30, 99])
@pytest.mark.parametrize("p", [0.5, 0.6, 0.9, 0.95, 0.975, 0.995, 0.9995, 0.025, 1e-4])
def test_t_quantile_matches_scipy(p, df):
    assert t_quantile(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), rel=1e-10, abs=1e-12)


def test_the_95_percent_quantile_for_ten_seeds_is_not_the_normal_one():
    assert t_quantile(0.975, 9) == pytest.approx(2.2622, abs=1e-4)  # the printed tables' value
    assert t_quantile(0.975, 100_000) == pytest.approx(1.95996, abs=1e-4)


def test_confidence_interval_matches_scipys_t_interval_along_an_axis():
    scores = np.random.default_rng(0).normal(0.8, 0.05, size=(4, 3, 7))
    interval = confidence_interval(scores, level=0.9, axis=1)
    assert isinstance(interval, Interval)
    mean = scores.mean(axis=1)
    low, high = scipy_stats.t.interval(0.9, 2, loc=mean, scale=scipy_stats.sem(scores, axis=1))
    np.testing.assert_allclose(interval.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(interval.low, low, rtol=1e-10)
    np.testing.assert_allclose(interval.high, high, rtol=1e-10)


def test_a_one_dimensional_input_gives_floats():
    interval = confidence_interval([0.7, 0.8, 0.9])
    assert all(type(v) is float for v in interval)
    assert interval.mean == pytest.approx(0.8)
    assert interval.low < interval.mean < interval.high


def test_95_percent_intervals_from_five_seeds_cover_the_true_mean_95_percent_of_the_time():
    # With the normal quantile 1.96 instead of t(4) = 2.78 the coverage would be about 88%.
    runs = np.random.default_rng(1).normal(3.0, 2.0, size=(20_000, 5))
    interval = confidence_interval(runs)
    coverage = np.mean((interval.low <= 3.0) & (3.0 <= interval.high))
    assert 0.94 < coverage < 0.96


@pytest.mark.parametrize("samples, match", [
    ([0.8], "at least two seeds"),
    (0.8, "one score per seed"),
    ([0.8, np.nan], "NaN or inf"),
])
def test_confidence_interval_refuses_what_it_cannot_use(samples, match):
    with pytest.raises(ValueError, match=match):
        confidence_interval(samples)


@pytest.mark.parametrize("p, df, match", [(0.5, 0, "df"), (0.5, 2.5, "df"), (1.0, 3, "p"),
                                          (0.0, 3, "p")])
def test_t_quantile_refuses_bad_arguments(p, df, match):
    with pytest.raises(ValueError, match=match):
        t_quantile(p, df)
