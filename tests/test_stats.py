"""bplib.stats: Student-t quantiles and intervals over seeds, checked against scipy."""

from __future__ import annotations

import numpy as np
import pytest

from bplib import Interval, confidence_interval
from bplib.stats import t_quantile, two_way_interval

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


# ---------------------------------------------------------------------- seeds and examples


def crossed(rng, reps, seeds, examples, sd_seed, sd_example, sd_residual):
    """``reps`` tables of scores mu + a_s + b_i + e_si with mu = 0: fresh seeds *and* a
    fresh draw of test examples in every table."""
    return (sd_seed * rng.standard_normal((reps, seeds, 1))
            + sd_example * rng.standard_normal((reps, 1, examples))
            + sd_residual * rng.standard_normal((reps, seeds, examples)))


# (sd of the seed effect, of the example effect, of the residual)
SOURCES = {"seeds": (1.0, 0.1, 0.5), "examples": (0.1, 1.0, 0.5),
           "residual": (0.1, 0.1, 2.0), "all": (0.5, 1.0, 2.0)}


@pytest.mark.parametrize("sources", SOURCES.values(), ids=SOURCES)
def test_two_way_intervals_cover_the_true_mean_95_percent_of_the_time(sources):
    tables = crossed(np.random.default_rng(2), 3000, 10, 40, *sources)
    intervals = [two_way_interval(t) for t in tables]
    coverage = np.mean([low <= 0.0 <= high for _, low, high in intervals])
    assert 0.935 < coverage < 0.975  # a little above 95% where an effect is tiny


def textbook_two_way(table, level):
    """The same interval from sums of squares written out as loops (no shortcut)."""
    S, I = len(table), len(table[0])
    grand = sum(sum(row) for row in table) / (S * I)
    rows = [sum(row) / I for row in table]
    cols = [sum(table[s][i] for s in range(S)) / S for i in range(I)]
    ss_rows = I * sum((r - grand) ** 2 for r in rows)
    ss_cols = S * sum((c - grand) ** 2 for c in cols)
    ss_total = sum((table[s][i] - grand) ** 2 for s in range(S) for i in range(I))
    ms_rows, ms_cols = ss_rows / (S - 1), ss_cols / (I - 1)
    df_e = (S - 1) * (I - 1)
    ms_e = (ss_total - ss_rows - ss_cols) / df_e
    var_seed, var_example = max(0.0, (ms_rows - ms_e) / I), max(0.0, (ms_cols - ms_e) / S)
    var = var_seed / S + var_example / I + ms_e / (S * I)
    # Satterthwaite: var as a combination of the mean squares it was built from
    c_rows, c_cols = (var_seed > 0) / (S * I), (var_example > 0) / (S * I)
    c_e = (1 - (var_seed > 0) - (var_example > 0)) / (S * I)
    df = var**2 / ((c_rows * ms_rows) ** 2 / (S - 1) + (c_cols * ms_cols) ** 2 / (I - 1)
                   + (c_e * ms_e) ** 2 / df_e)
    half = scipy_stats.t.ppf(0.5 + level / 2, np.floor(df + 1e-9)) * var**0.5
    return grand, grand - half, grand + half


@pytest.mark.parametrize("sources", SOURCES.values(), ids=SOURCES)
def test_two_way_interval_matches_the_textbook_sums_of_squares(sources):
    for seed in range(5):
        table = crossed(np.random.default_rng(seed), 1, 6, 9, *sources)[0]
        assert two_way_interval(table, level=0.9) == pytest.approx(
            textbook_two_way(table.tolist(), 0.9), rel=1e-9)


def test_an_interval_over_seeds_alone_misses_when_the_test_examples_matter():
    # the reason for two_way_interval: with a fresh test set in every table, the
    # seeds-only interval of the per-seed means covers far less than 95%
    tables = crossed(np.random.default_rng(4), 2000, 10, 40, *SOURCES["examples"])
    seeds_only = [confidence_interval(t.mean(axis=1)) for t in tables]
    assert np.mean([low <= 0.0 <= high for _, low, high in seeds_only]) < 0.5


def test_right_or_wrong_scores_of_a_fixed_accuracy_are_covered():
    # scores 1/0 from P(right) = sigmoid(1.4 + a_s + b_i): accuracy about 0.75 with
    # hard and easy examples and better and worse seeds
    rng = np.random.default_rng(5)
    a, b = 0.3 * rng.standard_normal((4000, 10, 1)), 1.5 * rng.standard_normal((4000, 1, 60))
    p = 1 / (1 + np.exp(-(1.4 + a + b)))
    truth = np.mean(1 / (1 + np.exp(-(1.4 + 0.3 * rng.standard_normal(10**6)
                                       + 1.5 * rng.standard_normal(10**6)))))
    tables = (rng.random(p.shape) < p).astype(float)
    coverage = np.mean([low <= truth <= high for _, low, high in map(two_way_interval, tables)])
    assert 0.93 < coverage < 0.97


def test_with_every_example_scored_alike_it_is_the_interval_of_the_seed_means():
    seed_scores = np.random.default_rng(6).normal(0.8, 0.05, size=(7, 1))
    table = seed_scores + np.zeros((7, 30))
    assert two_way_interval(table, level=0.9) == pytest.approx(
        tuple(confidence_interval(seed_scores[:, 0], level=0.9)), rel=1e-12)


def test_two_way_interval_of_identical_scores_is_a_point():
    assert two_way_interval(np.ones((3, 4))) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize("scores, match", [
    (np.zeros(5), "2-D"), (np.zeros((1, 5)), "at least two"), (np.zeros((5, 1)), "two"),
    (np.array([[0.0, np.inf], [1.0, 0.0]]), "NaN or inf"),
])
def test_two_way_interval_refuses_what_it_cannot_use(scores, match):
    with pytest.raises(ValueError, match=match):
        two_way_interval(scores)


@pytest.mark.parametrize("level", [0.0, 1.0, 95])
def test_two_way_interval_refuses_a_level_outside_zero_and_one(level):
    with pytest.raises(ValueError, match="level must lie strictly between 0 and 1"):
        two_way_interval(np.eye(3), level=level)
