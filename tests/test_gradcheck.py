"""bplib.gradcheck: the numerical gradients, the error measure and the report.

Everything else in the course trusts these functions to judge gradients, so
they are checked here against closed-form derivatives, never against
themselves.
"""

from __future__ import annotations

import dataclasses
import inspect

import hypothesis.strategies as st
import numpy as np
import oracle
import pytest
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp

import bplib
from bplib import gradcheck
from bplib.gradcheck import (
    TOLERANCE,
    check_gradients,
    grad_close,
    numerical_gradient,
    numerical_gradient_array,
    rel_error,
)

SETTINGS = settings(max_examples=30, deadline=None)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
values = st.floats(-2, 2, allow_nan=False, allow_subnormal=False)


# --------------------------------------------------------------- numerical_gradient


@SETTINGS
@given(x=hnp.arrays(np.float64, shapes, elements=values))
def test_numerical_gradient_of_a_cubic_matches_its_derivative(x):
    g = numerical_gradient(lambda: float(np.sum(x**3)), x)
    assert g.shape == x.shape and g.dtype == np.float64
    np.testing.assert_allclose(g, 3 * x**2, rtol=1e-7, atol=1e-8)


def test_numerical_gradient_perturbs_x_in_place_one_entry_at_a_time():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    original = x.copy()
    seen = []

    def f():
        seen.append(x.copy())  # f reads x itself: the very array being perturbed
        return float(np.sum(x))

    numerical_gradient(f, x, h=1e-3)
    assert len(seen) == 2 * x.size
    for k, snapshot in enumerate(seen):
        changed = np.flatnonzero(snapshot != original)
        assert changed.size == 1, f"call {k}: {changed.size} entries were perturbed"
        i = changed[0]
        sign = 1 if k % 2 == 0 else -1  # x + h first, then x - h
        assert snapshot.flat[i] == pytest.approx(original.flat[i] + sign * 1e-3)
    assert sorted({np.flatnonzero(s != original)[0] for s in seen}) == list(range(x.size))


def test_numerical_gradient_restores_x_bit_for_bit():
    # Entries much smaller than h lose their low bits in x - h: restoring by
    # arithmetic, (x - h) + h, would change them.
    x = np.array([1e-6 / 3, np.pi * 1e-8, 0.1, -1e-7 / 7])
    h = 1e-5
    assert np.sum((x - h) + h != x) == 3
    before = x.copy()
    numerical_gradient(lambda: float(np.sum(np.sin(x))), x, h)
    np.testing.assert_array_equal(x, before)
    assert x.tobytes() == before.tobytes()


def test_numerical_gradient_restores_x_even_when_f_raises():
    x = np.array([1.0, 2.0])
    before = x.copy()

    def f():
        raise RuntimeError("f failed")

    with pytest.raises(RuntimeError, match="f failed"):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_uses_central_differences_with_step_h():
    # For f = x**3 the central difference is 3 x^2 + h^2 exactly; a forward one is not.
    x = np.array([1.0])
    g = numerical_gradient(lambda: float(x[0] ** 3), x, h=1e-2)
    assert g[0] == pytest.approx(3 + 1e-4, rel=1e-9)


def test_numerical_gradient_refuses_integer_arrays():
    x = np.array([1, 2, 3])
    with pytest.raises(TypeError, match="int64"):
        numerical_gradient(lambda: float(np.sum(x**2)), x)


def test_numerical_gradient_refuses_a_list():
    with pytest.raises(TypeError, match="list"):
        numerical_gradient(lambda: 0.0, [1.0, 2.0])


# --------------------------------------------------------- numerical_gradient_array


def _sin_times_matrix(x, A):
    return np.sin(x) @ A


@SETTINGS
@given(data=st.data())
def test_numerical_gradient_array_equals_the_vector_jacobian_product(data):
    n, d, m = (data.draw(st.integers(1, 4)) for _ in range(3))
    x = data.draw(hnp.arrays(np.float64, (n, d), elements=values))
    A = data.draw(hnp.arrays(np.float64, (d, m), elements=values))
    dout = data.draw(hnp.arrays(np.float64, (n, m), elements=values))
    num = numerical_gradient_array(lambda: _sin_times_matrix(x, A), x, dout)
    exact = np.cos(x) * (dout @ A.T)  # d/dx sum(dout * (sin(x) @ A))
    np.testing.assert_allclose(num, exact, rtol=1e-6, atol=1e-8)


def test_numerical_gradient_array_agrees_with_jax_vjp():
    rng = np.random.default_rng(1)
    x, dout = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    num = numerical_gradient_array(lambda: bplib.softmax(x), x, dout)
    (expected,) = oracle.vjp(oracle.softmax, (x,), dout)
    np.testing.assert_allclose(num, expected, rtol=1e-6, atol=1e-9)


def test_numerical_gradient_array_names_both_shapes_when_f_and_dout_disagree():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        numerical_gradient_array(lambda: x * 2, x, np.ones((3, 2)))


# -------------------------------------------------------------------------- rel_error


def test_rel_error_is_the_largest_entrywise_relative_difference():
    a = np.array([1.0, 2.0, 0.0])
    b = np.array([1.5, 2.0, 0.0])
    assert rel_error(a, b) == pytest.approx(0.5 / 2.5)  # the 0/0 entry counts as 0
    assert rel_error(np.array([3.0, -1.0]), np.array([1.0, 1.0])) == 1.0


def test_rel_error_floors_the_denominator_at_1e_minus_8():
    assert rel_error(np.array([1e-10]), np.array([0.0])) == pytest.approx(1e-10 / 1e-8)
    assert rel_error(np.array([1e-9]), np.array([-1e-9])) == pytest.approx(2e-9 / 1e-8)
    # above the floor the denominator is |a| + |b|
    assert rel_error(np.array([1e-6]), np.array([0.0])) == 1.0
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0


@SETTINGS
@given(data=st.data())
def test_rel_error_is_symmetric_bounded_and_zero_only_for_equal_arrays(data):
    shape = data.draw(shapes)
    a = data.draw(hnp.arrays(np.float64, shape, elements=values))
    b = data.draw(hnp.arrays(np.float64, shape, elements=values))
    e = rel_error(a, b)
    assert isinstance(e, float)
    assert e == rel_error(b, a)
    assert 0.0 <= e <= 1.0
    assert (e == 0.0) == np.array_equal(a, b)


def test_rel_error_names_both_shapes_when_they_differ():
    with pytest.raises(ValueError, match=r"\(3,\).*\(3, 1\)"):
        rel_error(np.zeros(3), np.zeros((3, 1)))


# ------------------------------------------------------------------ check_gradients


def _linear_mse_problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, 3))
    t = rng.standard_normal((5, 2))
    params = {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}

    def loss():
        out, _ = bplib.linear_forward(x, params["W"], params["b"])
        return bplib.mse_loss(out, t)[0]

    out, cache = bplib.linear_forward(x, params["W"], params["b"])
    _, dout = bplib.mse_loss(out, t)
    _, dW, db = bplib.linear_backward(dout, cache)
    return loss, params, {"W": dW, "b": db}


def test_check_gradients_passes_correct_gradients_and_leaves_params_unchanged():
    loss, params, grads = _linear_mse_problem()
    before = {k: v.copy() for k, v in params.items()}
    report = check_gradients(loss, params, grads)
    assert report.passed
    assert [e.name for e in report.entries] == ["W", "b"]
    assert all(e.passed for e in report.entries)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])


def test_check_gradients_reports_the_planted_wrong_entry():
    loss, params, grads = _linear_mse_problem()
    true_value = grads["W"][2, 1]
    bad = {"W": grads["W"].copy(), "b": grads["b"]}
    bad["W"][2, 1] += 0.3
    bad["W"][0, 0] += 1e-9  # within tolerance: must not be reported as the worst
    report = check_gradients(loss, params, bad)
    assert not report.passed
    worst = report.worst
    assert worst.name == "W" and worst.index == (2, 1)
    assert worst.analytic == bad["W"][2, 1]
    assert worst.numerical == pytest.approx(true_value, rel=1e-6)
    assert worst.rel_error == pytest.approx(rel_error(bad["W"][2, 1], true_value), rel=1e-5)
    assert not worst.passed
    assert report["b"].passed and not report["W"].passed
    text = str(report)
    assert "FAIL" in text and "(2, 1)" in text and "W" in text


def test_check_gradients_finds_a_wrong_entry_in_any_parameter():
    loss, params, grads = _linear_mse_problem(seed=3)
    bad = dict(grads, b=-grads["b"])  # sign error in db
    report = check_gradients(loss, params, bad)
    assert report.worst.name == "b" and report["W"].passed


def test_check_gradients_names_both_shapes_of_a_misshapen_gradient():
    loss, params, grads = _linear_mse_problem()
    with pytest.raises(ValueError, match=r"'W'.*\(2, 3\).*\(3, 2\)"):
        check_gradients(loss, params, dict(grads, W=grads["W"].T))


def test_check_gradients_names_a_missing_gradient():
    loss, params, grads = _linear_mse_problem()
    with pytest.raises(ValueError, match="'b'"):
        check_gradients(loss, params, {"W": grads["W"]})


# ---------------------------------------------------------------- the one tolerance


def test_tolerance_lives_in_one_object_that_the_checks_use_by_default():
    assert gradcheck.TOLERANCE is bplib.TOLERANCE is TOLERANCE
    assert inspect.signature(check_gradients).parameters["tol"].default is TOLERANCE
    assert inspect.signature(grad_close).parameters["tol"].default is TOLERANCE
    assert TOLERANCE.h == 1e-5
    with pytest.raises(dataclasses.FrozenInstanceError):
        TOLERANCE.rtol = 1.0


def _linear_problem_with_error(relative_error):
    """f(w) = c . w, whose numerical gradient is c up to rounding; analytic = c (1 + err)."""
    c = np.array([2.0, -3.0, 0.5])
    w = np.ones(3)
    return (lambda: float(c @ w)), {"w": w}, {"w": c * (1 + relative_error)}


@pytest.mark.parametrize("factor, passes", [(0.3, True), (3.0, False)])
def test_check_gradients_draws_the_line_at_TOLERANCE(factor, passes):
    f, params, grads = _linear_problem_with_error(factor * TOLERANCE.rtol)
    assert check_gradients(f, params, grads).passed is passes
    assert grad_close(grads["w"], np.array([2.0, -3.0, 0.5])) is passes


def test_check_gradients_follows_a_tolerance_passed_to_it():
    f, params, grads = _linear_problem_with_error(1e-3)
    assert not check_gradients(f, params, grads).passed
    loose = dataclasses.replace(TOLERANCE, rtol=1e-2)
    assert check_gradients(f, params, grads, tol=loose).passed


def test_grad_close_rejects_a_gradient_of_the_wrong_shape_rather_than_broadcasting():
    assert not grad_close(np.ones((3, 1)), np.ones(3))
