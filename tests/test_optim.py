"""bplib.optim against hand-unrolled formulas, and Sequential's gradients against JAX autodiff.

The update rules are recursive; the expected values here are the first steps
written out by hand as closed forms in the gradients g1, g2, g3, so that a test
and the code under test never share a recursion.
"""

from __future__ import annotations

import numpy as np
import pytest

from bplib import (
    SGD,
    Adam,
    Linear,
    ReLU,
    RMSProp,
    Sequential,
    Tanh,
    adam_update,
    nesterov_update,
    rmsprop_update,
    sgd_momentum_update,
    sgd_update,
)

LR, MU = 0.1, 0.9
W0 = np.array([1.0, -2.0, 0.5])
G = [np.array([0.5, 1.0, -3.0]), np.array([-1.0, 0.25, 2.0]), np.array([0.3, -0.7, 1.1])]


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------------- update functions


def test_sgd_momentum_update_by_hand_with_numbers():
    # w = 1, g = 0.5 twice, lr 0.1, momentum 0.9:
    # v1 = -0.05, w1 = 0.95; v2 = 0.9 * -0.05 - 0.05 = -0.095, w2 = 0.855
    w, v = sgd_momentum_update(np.array(1.0), np.array(0.5), np.array(0.0), LR, MU)
    assert (float(w), float(v)) == pytest.approx((0.95, -0.05))
    w, v = sgd_momentum_update(w, np.array(0.5), v, LR, MU)
    assert (float(w), float(v)) == pytest.approx((0.855, -0.095))


def test_sgd_momentum_update_first_three_steps_match_the_unrolled_formula():
    w, v = W0, np.zeros(3)
    for g in G:
        w, v = sgd_momentum_update(w, g, v, LR, MU)
    g1, g2, g3 = G
    v3 = -LR * (MU**2 * g1 + MU * g2 + g3)
    w3 = W0 - LR * ((1 + MU + MU**2) * g1 + (1 + MU) * g2 + g3)  # w0 + v1 + v2 + v3
    close(v, v3)
    close(w, w3)


def test_sgd_update_is_w_minus_lr_times_the_gradient():
    close(sgd_update(W0, G[0], LR), [0.95, -2.1, 0.8])


def test_nesterov_update_first_two_steps_match_the_keras_form():
    g1, g2 = G[:2]
    w, v = nesterov_update(W0, g1, np.zeros(3), LR, MU)
    close(v, -LR * g1)
    close(w, W0 - (1 + MU) * LR * g1)
    w, v = nesterov_update(w, g2, v, LR, MU)
    v2 = -MU * LR * g1 - LR * g2
    close(v, v2)
    close(w, W0 - (1 + MU) * LR * g1 + MU * v2 - LR * g2)


def test_rmsprop_update_first_two_steps_match_the_formula():
    rho, eps = 0.9, 1e-7
    g1, g2 = G[:2]
    w, s = rmsprop_update(W0, g1, np.zeros(3), LR, rho, eps)
    w1 = W0 - LR * g1 / (np.sqrt((1 - rho) * g1**2) + eps)
    close(w, w1)
    w, s = rmsprop_update(w, g2, s, LR, rho, eps)
    s2 = rho * (1 - rho) * g1**2 + (1 - rho) * g2**2
    close(s, s2)
    close(w, w1 - LR * g2 / (np.sqrt(s2) + eps))


def test_adam_update_first_two_steps_match_the_bias_corrected_formula():
    b1, b2, eps = 0.9, 0.999, 1e-8
    g1, g2 = G[:2]
    w, m, v = adam_update(W0, g1, np.zeros(3), np.zeros(3), 1, LR, b1, b2, eps)
    # after one step the bias-corrected moments are g1 and g1**2: a step of lr * sign(g1)
    w1 = W0 - LR * g1 / (np.abs(g1) + eps)
    close(w, w1)
    np.testing.assert_allclose(w1, W0 - LR * np.sign(g1), rtol=1e-6)
    w, m, v = adam_update(w, g2, m, v, 2, LR, b1, b2, eps)
    m2 = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v2 = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    close(m, m2)
    close(v, v2)
    close(w, w1 - LR * (m2 / (1 - b1**2)) / (np.sqrt(v2 / (1 - b2**2)) + eps))


def test_adam_update_rejects_t_zero():
    with pytest.raises(ValueError, match="counts the steps from 1"):
        adam_update(W0, G[0], np.zeros(3), np.zeros(3), 0, LR, 0.9, 0.999, 1e-8)


# Every update rule: its array arguments in order (w, dw, then the state it returns
# after w) and its other arguments.
UPDATE_RULES = [
    pytest.param(sgd_update, ("w", "dw"), (LR,), id="sgd_update"),
    pytest.param(sgd_momentum_update, ("w", "dw", "v"), (LR, MU), id="sgd_momentum_update"),
    pytest.param(nesterov_update, ("w", "dw", "v"), (LR, MU), id="nesterov_update"),
    pytest.param(rmsprop_update, ("w", "dw", "s"), (LR, 0.9, 1e-7), id="rmsprop_update"),
    pytest.param(adam_update, ("w", "dw", "m", "v"), (2, LR, 0.9, 0.999, 1e-8),
                 id="adam_update"),
]


def _update_arguments(names) -> dict[str, np.ndarray]:
    """Float arrays, no entry zero (``v *= momentum`` would leave zeros as they were),
    the state positive (``s`` and ``v`` are running means of squares)."""
    state = iter(np.abs(g) + 0.5 for g in G[1:])
    return {n: W0.copy() if n == "w" else G[0].copy() if n == "dw" else next(state)
            for n in names}


def _as_tuple(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("rule, names, hyper", UPDATE_RULES)
def test_every_update_rule_is_pure_by_default(rule, names, hyper):
    args = _update_arguments(names)
    saved = {n: a.copy() for n, a in args.items()}
    out = _as_tuple(rule(*args.values(), *hyper))
    assert len(out) == len(names) - 1  # the new w and the new state
    for name, a in args.items():
        np.testing.assert_array_equal(a, saved[name], err_msg=f"changed its argument {name}")
        assert not any(np.shares_memory(o, a) for o in out), f"returned a view of {name}"


@pytest.mark.parametrize("rule, names, hyper", UPDATE_RULES)
def test_every_update_rule_with_inplace_writes_into_w_and_its_state_and_nothing_else(
        rule, names, hyper):
    pure = _as_tuple(rule(*_update_arguments(names).values(), *hyper))
    given = _update_arguments(names)
    out = _as_tuple(rule(*given.values(), *hyper, inplace=True))
    written = [n for n in names if n != "dw"]
    assert len(out) == len(written)
    for name, o, p in zip(written, out, pure, strict=True):
        assert o is given[name], f"inplace=True returned a new array for {name}"
        close(given[name], p)  # the array passed in holds the new value
    np.testing.assert_array_equal(given["dw"], G[0], err_msg="changed its argument dw")


def test_inplace_updates_write_into_the_arrays_passed_in():
    w, v = W0.copy(), np.zeros(3)
    w_out, v_out = sgd_momentum_update(w, G[0], v, LR, MU, inplace=True)
    assert w_out is w and v_out is v
    close(w, W0 - LR * G[0])
    close(v, -LR * G[0])
    w, m, v = W0.copy(), np.zeros(3), np.zeros(3)
    pure = adam_update(W0, G[0], np.zeros(3), np.zeros(3), 1, LR, 0.9, 0.999, 1e-8)
    out = adam_update(w, G[0], m, v, 1, LR, 0.9, 0.999, 1e-8, inplace=True)
    assert out[0] is w and out[1] is m and out[2] is v
    for a, b in zip(out, pure, strict=True):
        close(a, b)


@pytest.mark.parametrize("rule, state, hyper", [
    (sgd_update, 0, (LR,)),
    (sgd_momentum_update, 1, (LR, MU)),
    (nesterov_update, 1, (LR, MU)),
    (rmsprop_update, 1, (LR, 0.9, 1e-7)),
    (adam_update, 2, (3, LR, 0.9, 0.999, 1e-8)),
])
def test_every_in_place_twin_agrees_with_its_pure_rule_and_returns_the_arrays_given(
    rule, state, hyper
):
    """``inplace=True`` runs a separate in-place twin of each rule: the two must not drift apart."""
    start = [W0.copy()] + [np.abs(g) for g in G[1:1 + state]]  # w, then the state (v, s or m, v)
    pure = rule(start[0].copy(), G[0], *[a.copy() for a in start[1:]], *hyper)
    given = [a.copy() for a in start]
    out = rule(given[0], G[0], *given[1:], *hyper, inplace=True)
    pure, out = (pure, out) if state else ((pure,), (out,))
    assert all(o is g for o, g in zip(out, given, strict=True))
    for a, b in zip(out, pure, strict=True):
        close(a, b)


# ---------------------------------------------------------------------- optimiser objects


def run(optimizer, steps=3):
    params = {"w": W0.copy()}
    for g in G[:steps]:
        optimizer.step(params, {"w": g})
    return params["w"]


def test_sgd_object_with_momentum_takes_the_unrolled_steps():
    g1, g2, g3 = G
    expected = W0 - LR * ((1 + MU + MU**2) * g1 + (1 + MU) * g2 + g3)
    close(run(SGD(lr=LR, momentum=MU)), expected)
    close(run(SGD(lr=LR)), W0 - LR * (g1 + g2 + g3))


def test_sgd_object_with_nesterov_takes_the_unrolled_steps():
    g1, g2 = G[:2]
    v1, v2 = -LR * g1, -LR * (MU * g1 + g2)
    expected = W0 + (MU * v1 - LR * g1) + (MU * v2 - LR * g2)
    close(run(SGD(lr=LR, momentum=MU, nesterov=True), steps=2), expected)


def test_rmsprop_object_takes_the_formula_steps():
    rho, eps = 0.9, 1e-7
    s, w = np.zeros(3), W0.copy()
    for g in G:
        s = rho * s + (1 - rho) * g**2
        w = w - LR * g / (np.sqrt(s) + eps)
    close(run(RMSProp(lr=LR)), w)


def test_adam_object_counts_steps_from_one_for_bias_correction():
    b1, b2, eps = 0.9, 0.999, 1e-7
    g1, g2, g3 = G
    m = [(1 - b1) * g1, (1 - b1) * (b1 * g1 + g2), (1 - b1) * (b1**2 * g1 + b1 * g2 + g3)]
    v = [(1 - b2) * g1**2, (1 - b2) * (b2 * g1**2 + g2**2),
         (1 - b2) * (b2**2 * g1**2 + b2 * g2**2 + g3**2)]
    w = W0.copy()
    for t in (1, 2, 3):
        w = w - LR * (m[t - 1] / (1 - b1**t)) / (np.sqrt(v[t - 1] / (1 - b2**t)) + eps)
    opt = Adam(lr=LR)
    close(run(opt), w)
    assert opt.iterations == 3


def test_optimiser_updates_the_parameter_arrays_in_place():
    params = {"w": W0.copy()}
    array = params["w"]
    SGD(lr=LR, momentum=MU).step(params, {"w": G[0]})
    assert params["w"] is array
    close(array, W0 - LR * G[0])


# ---------------------------------------------------------------------- JAX oracle


@pytest.fixture(scope="module")
def jnp():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    # Float64 for this module only: a global switch would leak into the Keras tests
    # that later run in the same process.
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield jnp
    jax.config.update("jax_enable_x64", previous)


def jax_mlp_loss(jnp, activation, loss):
    import jax

    act = {"tanh": jnp.tanh, "relu": jax.nn.relu}[activation]

    def f(params, X, y):
        W1, b1, W2, b2, W3, b3 = params
        z = act(act(X @ W1 + b1) @ W2 + b2) @ W3 + b3
        if loss == "softmax_cross_entropy":
            logp = jax.nn.log_softmax(z, axis=1)
            return -jnp.mean(logp[jnp.arange(X.shape[0]), y])
        if loss == "binary_cross_entropy":
            return jnp.mean(jnp.logaddexp(0.0, z) - z * y)
        return jnp.sum((z - y) ** 2) / (2 * X.shape[0])

    return f


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "binary_cross_entropy", "mse"])
def test_sequential_loss_gradients_match_jax_autodiff_in_float64(jnp, activation, loss):
    import jax

    n, d, h1, h2 = 7, 5, 6, 4
    m = 1 if loss == "binary_cross_entropy" else 3
    rng = np.random.default_rng(11)
    act = {"tanh": Tanh, "relu": ReLU}[activation]
    model = Sequential([Linear(d, h1, rng=rng), act(), Linear(h1, h2, rng=rng), act(),
                        Linear(h2, m, rng=rng)], loss=loss)
    for p in model.parameters().values():
        p[...] = rng.standard_normal(p.shape)
    X = rng.standard_normal((n, d))
    if loss == "softmax_cross_entropy":
        y = rng.integers(0, m, n)
    elif loss == "binary_cross_entropy":
        y = rng.integers(0, 2, (n, 1)).astype(float)
    else:
        y = rng.standard_normal((n, m))
    value, grads = model.loss(X, y)
    weights = [jnp.asarray(w) for w in model.get_weights()]
    f = jax_mlp_loss(jnp, activation, loss)
    ref_value, ref_grads = jax.value_and_grad(f)(weights, jnp.asarray(X), jnp.asarray(y))
    assert ref_grads[0].dtype == np.float64
    assert value == pytest.approx(float(ref_value), rel=1e-12)
    for name, ref in zip(model.parameters(), ref_grads, strict=True):
        np.testing.assert_allclose(grads[name], np.asarray(ref), rtol=1e-10, atol=1e-13,
                                   err_msg=name)
