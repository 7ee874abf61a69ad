"""bplib.prehistory: McCulloch-Pitts units, Rosenblatt's perceptron, Widrow-Hoff ADALINE."""

from __future__ import annotations

import numpy as np
import pytest

import bplib
from bplib.prehistory import Adaline, McCullochPittsUnit, Perceptron

INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])


# ----------------------------------------------------------------------------- McCulloch-Pitts


@pytest.mark.parametrize(
    ("weights", "threshold", "table"),
    [
        ([1, 1], 2, [0, 0, 0, 1]),  # AND
        ([1, 1], 1, [0, 1, 1, 1]),  # OR
        ([-1, -1], -1, [1, 1, 1, 0]),  # NAND: inhibitory weights
    ],
    ids=["and", "or", "nand"],
)
def test_mcculloch_pitts_unit_computes_the_truth_table(weights, threshold, table):
    unit = McCullochPittsUnit(weights, threshold)
    assert unit(INPUTS).tolist() == table
    assert [unit(row) for row in INPUTS] == table


def test_mcculloch_pitts_not_uses_an_inhibitory_weight():
    unit = McCullochPittsUnit([-1], 0)
    assert unit([0]) == 1
    assert unit([1]) == 0


def test_mcculloch_pitts_unit_rejects_non_binary_input():
    with pytest.raises(ValueError, match="binary inputs"):
        McCullochPittsUnit([1, 1], 2)([0.5, 1])


def test_mcculloch_pitts_unit_rejects_wrong_number_of_inputs():
    with pytest.raises(ValueError, match=r"\(3,\).*2 inputs"):
        McCullochPittsUnit([1, 1], 2)([1, 0, 1])


# ----------------------------------------------------------------------------- perceptron


@pytest.mark.parametrize("name", ["and", "or", "nand"])
def test_perceptron_learns_linearly_separable_truth_tables(name):
    X, y = bplib.truth_table(name)
    p = Perceptron().fit(X, y)
    assert p.converged
    assert p.mistakes_per_epoch[-1] == 0
    assert p.epochs_run == len(p.mistakes_per_epoch) < p.max_epochs
    np.testing.assert_array_equal(p.predict(X), y)


def test_perceptron_never_converges_on_xor():
    X, y = bplib.truth_table("xor")
    p = Perceptron(max_epochs=50).fit(X, y)
    assert not p.converged
    assert p.epochs_run == 50
    assert len(p.mistakes_per_epoch) == 50
    assert min(p.mistakes_per_epoch) > 0
    assert np.any(p.predict(X) != y)


def test_perceptron_update_follows_rosenblatts_rule():
    # One sample, label 1; from w = 0, b = 0 the unit fires (0 >= 0) for label 0 only.
    X = np.array([[2.0, -1.0]])
    p = Perceptron(lr=0.5, max_epochs=1).fit(X, [0])
    # yhat = 1, y = 0: w <- 0 + 0.5 * (0 - 1) * x, b <- 0 + 0.5 * (0 - 1)
    np.testing.assert_allclose(p.w, [-1.0, 0.5])
    assert p.b == pytest.approx(-0.5)
    assert p.mistakes_per_epoch == [1]


def test_perceptron_with_a_seed_is_reproducible_and_still_learns():
    X, y = bplib.truth_table("and")
    a = Perceptron(rng=3).fit(X, y)
    b = Perceptron(rng=3).fit(X, y)
    assert a.converged
    assert a.mistakes_per_epoch == b.mistakes_per_epoch
    np.testing.assert_array_equal(a.w, b.w)


def test_perceptron_rejects_labels_other_than_zero_and_one():
    X, _ = bplib.truth_table("and")
    with pytest.raises(ValueError, match="0 or 1, got -1"):
        Perceptron().fit(X, [-1, -1, -1, 1])


def test_perceptron_rejects_y_of_the_wrong_length():
    X, _ = bplib.truth_table("and")
    with pytest.raises(ValueError, match=r"y has shape \(3,\) but X has 4 rows"):
        Perceptron().fit(X, [0, 0, 1])


def test_perceptron_predict_names_feature_mismatch():
    X, y = bplib.truth_table("or")
    p = Perceptron().fit(X, y)
    with pytest.raises(ValueError, match=r"3 features.*fitted on 2"):
        p.predict(np.zeros((1, 3)))


# ----------------------------------------------------------------------------- ADALINE


def test_adaline_first_update_matches_the_widrow_hoff_rule_by_hand():
    x0 = np.array([1.0, 2.0])
    lr = 0.1
    model = Adaline(lr=lr, epochs=1).fit(x0[None, :], [0])
    # t = 2*0 - 1 = -1; net = 0 at w = 0, b = 0; w <- lr * (t - net) * x, b <- lr * (t - net)
    np.testing.assert_allclose(model.w, lr * (-1.0 - 0.0) * x0)
    assert model.b == pytest.approx(lr * (-1.0 - 0.0))
    expected_mse = (-1.0 - (x0 @ model.w + model.b)) ** 2
    assert model.mse_per_epoch == [pytest.approx(expected_mse)]


def test_adaline_second_update_uses_the_current_net_input():
    X = np.array([[1.0, 0.0], [0.5, 1.0]])
    lr = 0.2
    model = Adaline(lr=lr, epochs=1).fit(X, [1, 0])
    w = lr * 1.0 * X[0]
    b = lr * 1.0
    err = -1.0 - (X[1] @ w + b)
    np.testing.assert_allclose(model.w, w + lr * err * X[1])
    assert model.b == pytest.approx(b + lr * err)


def test_adaline_converges_on_a_linearly_separable_problem():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-2, 0.5, (40, 2)), rng.normal(2, 0.5, (40, 2))])
    y = np.repeat([0, 1], 40)
    model = Adaline(lr=0.01, epochs=200).fit(X, y)
    assert model.converged
    assert model.epochs_run < 200
    assert model.mse_per_epoch[-1] < model.mse_per_epoch[0]
    assert abs(model.mse_per_epoch[-1] - model.mse_per_epoch[-2]) < model.tol
    np.testing.assert_array_equal(model.predict(X), y)


def test_adaline_reports_no_convergence_when_epochs_run_out():
    X, y = bplib.truth_table("and")
    model = Adaline(lr=0.001, epochs=3).fit(X, y)
    assert not model.converged
    assert model.epochs_run == 3
    assert len(model.mse_per_epoch) == 3


def test_adaline_mse_decreases_on_the_and_table():
    X, y = bplib.truth_table("and")
    model = Adaline(lr=0.1, epochs=300).fit(X, y)
    assert model.converged
    assert np.all(np.diff(model.mse_per_epoch[:20]) < 0)
    np.testing.assert_array_equal(model.predict(X), y)


def test_adaline_with_too_large_a_rate_raises_naming_the_rate():
    X = np.array([[10.0, 10.0], [-10.0, 10.0]])
    with pytest.raises(FloatingPointError, match=r"diverged.*lr=5\.0"):
        Adaline(lr=5.0, epochs=200).fit(X, [0, 1])


def test_adaline_net_input_is_x_dot_w_plus_b():
    X, y = bplib.truth_table("or")
    model = Adaline(lr=0.1, epochs=20).fit(X, y)
    np.testing.assert_allclose(model.net_input(X), X @ model.w + model.b)


def test_prehistory_names_are_exported_from_bplib():
    assert bplib.Perceptron is Perceptron
    assert bplib.Adaline is Adaline
    assert bplib.McCullochPittsUnit is McCullochPittsUnit
