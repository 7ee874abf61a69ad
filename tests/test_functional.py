"""bplib.functional against the contract in DESIGN.md.

Every backward function and every loss gradient is checked two independent
ways, over shapes and values drawn by hypothesis:

(a) against bplib's own central differences (``numerical_gradient[_array]``),
    judged by the course's single tolerance (``grad_close``);
(b) against a float64 JAX oracle (``tests/oracle.py``), written from the formulas.

N, D and M are drawn independently, and square cases N == D == M are drawn
on purpose: there a transposed gradient has the right shape, and
``test_square_gradient_check_rejects_transposed_dW_and_dx`` shows that the
checks then fail it.
"""

from __future__ import annotations

import functools
import warnings

import hypothesis.strategies as st
import numpy as np
import oracle
import pytest
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp

import bplib
from bplib.gradcheck import grad_close, numerical_gradient, numerical_gradient_array, rel_error

SETTINGS = settings(max_examples=30, deadline=None)
ORACLE_TOL = {"rtol": 1e-10, "atol": 1e-12}  # float64 vs float64: only rounding differs

# JAX compiles its program once per shape (~0.1 s each), so the oracle tests
# draw each axis from 1..3; the numpy-only numerical checks range wider.
dims = st.integers(1, 5)
oracle_dims = st.integers(1, 3)
values = st.floats(-3, 3, allow_nan=False, allow_infinity=False, allow_subnormal=False)
# Away from 0, where ReLU has a kink that central differences straddle.
off_kink = values.filter(lambda v: abs(v) > 1e-3)


def arrays(shape, elements=values):
    return hnp.arrays(np.float64, shape, elements=elements)


def assert_grad_close(name: str, analytic, numerical) -> None:
    assert analytic.shape == numerical.shape, f"{name}: {analytic.shape} vs {numerical.shape}"
    assert grad_close(analytic, numerical), (
        f"{name} differs from the numerical gradient: rel. error {rel_error(analytic, numerical)}"
        f"\nanalytic\n{analytic}\nnumerical\n{numerical}"
    )


# --------------------------------------------------------------------------- linear

@st.composite
def linear_inputs(draw, dims=dims):
    """N, D, M drawn independently, or all equal (where a transposed dW has dW's shape)."""
    n, d, m = draw(st.one_of(st.tuples(dims, dims, dims), dims.map(lambda n: (n, n, n))))
    return (draw(arrays((n, d))), draw(arrays((d, m))), draw(arrays((m,))),
            draw(arrays((n, m))))


def test_linear_forward_caches_its_inputs():
    x, W, b = np.ones((2, 3)), np.ones((3, 4)), np.zeros(4)
    out, cache = bplib.linear_forward(x, W, b)
    assert isinstance(cache, tuple) and len(cache) == 3
    for cached, given_ in zip(cache, (x, W, b), strict=True):
        assert np.array_equal(cached, given_)


@SETTINGS
@given(linear_inputs())
def test_linear_backward_matches_numerical_gradient(inputs):
    x, W, b, dout = inputs
    dx, dW, db = bplib.linear_backward(dout, bplib.linear_forward(x, W, b)[1])

    def f():
        return bplib.linear_forward(x, W, b)[0]

    assert_grad_close("dx", dx, numerical_gradient_array(f, x, dout))
    assert_grad_close("dW", dW, numerical_gradient_array(f, W, dout))
    assert_grad_close("db", db, numerical_gradient_array(f, b, dout))


@SETTINGS
@given(linear_inputs(oracle_dims))
def test_linear_forward_and_backward_match_jax(inputs):
    x, W, b, dout = inputs
    out, cache = bplib.linear_forward(x, W, b)
    expected_out, expected = oracle.value_and_vjp(oracle.linear, (x, W, b), dout)
    assert out.shape == (x.shape[0], W.shape[1])
    np.testing.assert_allclose(out, expected_out, **ORACLE_TOL)
    grads = bplib.linear_backward(dout, cache)
    for name, got, want in zip(("dx", "dW", "db"), grads, expected, strict=True):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, **ORACLE_TOL, err_msg=name)


@SETTINGS
@given(n=st.integers(2, 4), seed=st.integers(0, 2**32 - 1))
def test_square_gradient_check_rejects_transposed_dW_and_dx(n, seed):
    """With N == D == M a transposed gradient has the right shape; the checks must still fail it."""
    rng = np.random.default_rng(seed)
    x, W, dout = (rng.standard_normal((n, n)) for _ in range(3))
    b = rng.standard_normal(n)
    dx, dW, _ = bplib.linear_backward(dout, bplib.linear_forward(x, W, b)[1])

    def f():
        return bplib.linear_forward(x, W, b)[0]

    num_dx, num_dW = numerical_gradient_array(f, x, dout), numerical_gradient_array(f, W, dout)
    jax_dx, jax_dW, _ = oracle.vjp(oracle.linear, (x, W, b), dout)
    assert grad_close(dW, num_dW) and grad_close(dx, num_dx)
    assert dW.T.shape == num_dW.shape
    assert not grad_close(dW.T, num_dW), "a transposed dW passed the gradient check"
    assert not np.allclose(dW.T, jax_dW), "a transposed dW matched the oracle"
    wrong_dx = dout @ W  # forgot the transpose of W: same shape when D == M
    assert not grad_close(wrong_dx, num_dx), "dout @ W passed the check for dx"
    assert not np.allclose(wrong_dx, jax_dx)


# --------------------------------------------------------------------------- activations

ACTIVATIONS = {
    "relu": (bplib.relu_forward, bplib.relu_backward, oracle.relu),
    "leaky_relu": (
        functools.partial(bplib.leaky_relu_forward, alpha=0.1),
        bplib.leaky_relu_backward,
        functools.partial(oracle.leaky_relu, alpha=0.1),
    ),
    "sigmoid": (bplib.sigmoid_forward, bplib.sigmoid_backward, oracle.sigmoid),
    "tanh": (bplib.tanh_forward, bplib.tanh_backward, oracle.tanh),
    "softmax": (bplib.softmax_forward, bplib.softmax_backward, oracle.softmax),
}


@st.composite
def activation_inputs(draw, elements=values, dims=dims):
    shape = (draw(dims), draw(dims))
    return draw(arrays(shape, elements)), draw(arrays(shape))


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@SETTINGS
@given(inputs=activation_inputs(off_kink))
def test_activation_backward_matches_numerical_gradient(name, inputs):
    forward, backward, _ = ACTIVATIONS[name]
    x, dout = inputs
    dx = backward(dout, forward(x)[1])
    assert_grad_close(f"d{name}", dx, numerical_gradient_array(lambda: forward(x)[0], x, dout))


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@SETTINGS
@given(inputs=activation_inputs(dims=oracle_dims))
def test_activation_forward_and_backward_match_jax(name, inputs):
    """Exact zeros are allowed here: both sides take the ReLU derivative at 0 to be 0."""
    forward, backward, reference = ACTIVATIONS[name]
    x, dout = inputs
    out, cache = forward(x)
    expected_out, (expected_dx,) = oracle.value_and_vjp(reference, (x,), dout)
    np.testing.assert_allclose(out, expected_out, **ORACLE_TOL)
    np.testing.assert_allclose(backward(dout, cache), expected_dx, **ORACLE_TOL)


@SETTINGS
@given(inputs=activation_inputs(off_kink, oracle_dims), alpha=st.floats(0.0, 0.5))
def test_leaky_relu_backward_uses_the_alpha_of_its_forward_pass(inputs, alpha):
    x, dout = inputs
    out, cache = bplib.leaky_relu_forward(x, alpha=alpha)
    expected_out, (expected_dx,) = oracle.value_and_vjp(
        oracle.leaky_relu, (x, alpha), dout, argnums=(0,)
    )
    np.testing.assert_allclose(out, expected_out, **ORACLE_TOL)
    np.testing.assert_allclose(bplib.leaky_relu_backward(dout, cache), expected_dx, **ORACLE_TOL)


def test_activation_caches_are_as_the_contract_says():
    x = np.array([[-1.5, 0.0, 2.0]])
    out, cache = bplib.relu_forward(x)
    assert isinstance(cache, np.ndarray) and np.array_equal(cache, x)
    out, cache = bplib.leaky_relu_forward(x, alpha=0.2)
    assert np.array_equal(cache[0], x) and cache[1] == 0.2
    for forward in (bplib.sigmoid_forward, bplib.tanh_forward, bplib.softmax_forward):
        out, cache = forward(x)
        assert isinstance(cache, np.ndarray) and np.array_equal(cache, out), forward.__name__


def _plain_functions(x):
    return oracle.sigmoid(x), oracle.softmax(x), oracle.log_softmax(x), oracle.logsumexp(x)


@SETTINGS
@given(inputs=activation_inputs(dims=oracle_dims))
def test_plain_sigmoid_softmax_log_softmax_logsumexp_match_jax(inputs):
    x, _ = inputs
    ours = (bplib.sigmoid, bplib.softmax, bplib.log_softmax, bplib.logsumexp)
    for fn, expected in zip(ours, oracle.value(_plain_functions, x), strict=True):
        np.testing.assert_allclose(fn(x), expected, **ORACLE_TOL, err_msg=fn.__name__)


# --------------------------------------------------------------------------- losses


@st.composite
def mse_inputs(draw, dims=dims):
    shape = draw(st.one_of(dims.map(lambda n: (n,)), st.tuples(dims, dims)))
    return draw(arrays(shape)), draw(arrays(shape))


@st.composite
def ce_inputs(draw, dims=dims):
    n, c = draw(dims), draw(dims)
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    return draw(arrays((n, c))), labels


@st.composite
def bce_inputs(draw, dims=dims):
    n = draw(dims)
    shape = draw(st.sampled_from([(n,), (n, 1)]))
    return draw(arrays(shape)), draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 1)))


LOSSES = {
    "mse_loss": (bplib.mse_loss, oracle.mse_loss, mse_inputs),
    "softmax_cross_entropy": (bplib.softmax_cross_entropy, oracle.softmax_cross_entropy,
                              ce_inputs),
    "binary_cross_entropy": (bplib.binary_cross_entropy, oracle.binary_cross_entropy,
                             bce_inputs),
}


@pytest.mark.parametrize("name", list(LOSSES))
@SETTINGS
@given(data=st.data())
def test_loss_and_gradient_match_jax(name, data):
    loss_fn, reference, inputs = LOSSES[name]
    z, target = data.draw(inputs(oracle_dims))
    loss, dz = loss_fn(z, target)
    expected_loss, expected_dz = oracle.value_and_grad(reference, z, target)
    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, expected_loss, **ORACLE_TOL)
    assert dz.shape == z.shape
    np.testing.assert_allclose(dz, expected_dz, **ORACLE_TOL)


@pytest.mark.parametrize("name", list(LOSSES))
@SETTINGS
@given(data=st.data())
def test_loss_gradient_matches_numerical_gradient(name, data):
    loss_fn, _, inputs = LOSSES[name]
    z, target = data.draw(inputs())
    _, dz = loss_fn(z, target)
    assert_grad_close(f"d {name}", dz, numerical_gradient(lambda: loss_fn(z, target)[0], z))


def test_mse_loss_divides_by_the_batch_size_not_the_number_of_entries():
    y, t = np.ones((2, 3)), np.zeros((2, 3))
    loss, dy = bplib.mse_loss(y, t)
    assert loss == 6 / (2 * 2)
    np.testing.assert_array_equal(dy, np.full((2, 3), 0.5))


def test_binary_cross_entropy_accepts_column_logits_with_flat_targets():
    z = np.array([[0.3], [-1.2], [2.0]])
    t = np.array([1, 0, 0])
    loss, dz = bplib.binary_cross_entropy(z, t)
    assert dz.shape == (3, 1)
    expected_loss, expected_dz = oracle.value_and_grad(oracle.binary_cross_entropy, z[:, 0], t)
    np.testing.assert_allclose(loss, expected_loss, **ORACLE_TOL)
    np.testing.assert_allclose(dz[:, 0], expected_dz, **ORACLE_TOL)


# --------------------------------------------------------------------------- dtypes


def _op_outputs(dtype):
    """Every op's forward output and every gradient, on inputs of ``dtype``."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 4)) * 3).astype(dtype)
    W = (rng.standard_normal((4, 2)) * 3).astype(dtype)
    b = np.arange(2).astype(dtype)
    d34, d32 = np.ones((3, 4), dtype), np.ones((3, 2), dtype)
    results = {}
    out, cache = bplib.linear_forward(x, W, b)
    results["linear_forward"] = out
    for i, g in enumerate(bplib.linear_backward(d32, cache)):
        results[f"linear_backward[{i}]"] = g
    for name, (forward, backward, _) in ACTIVATIONS.items():
        out, cache = forward(x)
        results[f"{name}_forward"] = out
        results[f"{name}_backward"] = backward(d34, cache)
    for fn in (bplib.sigmoid, bplib.softmax, bplib.log_softmax, bplib.logsumexp):
        results[fn.__name__] = fn(x)
    results["mse_loss dy"] = bplib.mse_loss(x, np.zeros((3, 4), dtype))[1]
    results["softmax_cross_entropy dlogits"] = bplib.softmax_cross_entropy(x, [0, 3, 1])[1]
    results["binary_cross_entropy dlogits"] = bplib.binary_cross_entropy(x[:, 0], [0, 1, 1])[1]
    return results


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_inputs_keep_their_dtype_in_every_op_and_gradient(dtype):
    wrong = {k: v.dtype for k, v in _op_outputs(dtype).items() if v.dtype != dtype}
    assert not wrong, f"{np.dtype(dtype)} in, but these came out otherwise: {wrong}"


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_integer_inputs_are_promoted_to_float64(dtype):
    wrong = {k: v.dtype for k, v in _op_outputs(dtype).items() if v.dtype != np.float64}
    assert not wrong, f"{np.dtype(dtype)} in, but these are not float64: {wrong}"


def test_float32_results_agree_with_float64_to_single_precision():
    lo, hi = _op_outputs(np.float32), _op_outputs(np.float64)
    for name in hi:
        np.testing.assert_allclose(lo[name], hi[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_mse_loss_gradient_has_the_dtype_of_the_prediction():
    y = np.ones((2, 1), np.float32)
    assert bplib.mse_loss(y, np.zeros((2, 1)))[1].dtype == np.float32


# --------------------------------------------------------------------------- stability


@pytest.fixture
def strict_floats():
    """Any warning, and any overflow, underflow, invalid or divide-by-zero, is an error."""
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_saturates_exactly_at_huge_logits(strict_floats, dtype):
    x = np.array([-1000.0, 1000.0, 0.0, -50.0], dtype)
    out = bplib.sigmoid(x)
    assert out.dtype == dtype
    assert out[0] == 0 and out[1] == 1 and out[2] == 0.5 and 0 < out[3] < 1e-21
    fwd, cache = bplib.sigmoid_forward(x)
    np.testing.assert_array_equal(fwd, out)
    np.testing.assert_array_equal(bplib.sigmoid_backward(np.ones_like(x), cache)[:3], [0, 0, 0.25])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_and_log_softmax_are_exact_at_huge_logits(strict_floats, dtype):
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0],
                  [1000.0, 1000.0, -1000.0]], dtype)
    p = bplib.softmax(x)
    assert p.dtype == dtype and np.all(np.isfinite(p))
    np.testing.assert_array_equal(p[0], [1, 0, 0])
    np.testing.assert_allclose(p[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_array_equal(p[2], [0.5, 0.5, 0])
    logp = bplib.log_softmax(x)
    np.testing.assert_array_equal(logp[0], [0, -2000, -1000])
    np.testing.assert_allclose(logp[2], [-np.log(2), -np.log(2), -2000 - np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(bplib.logsumexp(x)[2], 1000 + np.log(2), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_cross_entropy_is_finite_and_exact_at_huge_logits(strict_floats, dtype):
    z = np.array([[1000.0, -1000.0], [1000.0, -1000.0], [-1000.0, 1000.0]], dtype)
    loss, dz = bplib.softmax_cross_entropy(z, np.array([0, 1, 1]))
    # right, wrong by 2000, right: mean loss 2000 / 3
    assert np.isfinite(loss) and loss == pytest.approx(2000 / 3, rel=1e-6)
    np.testing.assert_allclose(dz, np.array([[0, 0], [1, -1], [0, 0]]) / 3, rtol=1e-6)
    assert dz.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_cross_entropy_is_finite_and_exact_at_huge_logits(strict_floats, dtype):
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0, 0.0], dtype)
    t = np.array([1, 0, 0, 1, 1])
    loss, dz = bplib.binary_cross_entropy(z, t)
    # right, right, wrong by 1000, wrong by 1000, log 2
    assert np.isfinite(loss) and loss == pytest.approx((2000 + np.log(2)) / 5, rel=1e-6)
    np.testing.assert_allclose(dz, np.array([0, 0, 1, -1, -0.5]) / 5, rtol=1e-6)
    assert dz.dtype == dtype
