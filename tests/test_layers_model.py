"""bplib.layers and bplib.model: gradients against central differences, weights, freezing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bplib import (
    SGD,
    LeakyReLU,
    Linear,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    check_gradients,
    grad_close,
    linear_backward,
    linear_forward,
    numerical_gradient_array,
)

sizes = st.integers(min_value=1, max_value=6)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
GRAD_SETTINGS = settings(max_examples=25, deadline=None)


def away_from_zero(rng, shape, margin=0.05):
    """Normal entries at least ``margin`` from 0, so no finite difference straddles a kink."""
    x = rng.standard_normal(shape)
    return x + np.sign(x) * margin


def assert_layer_backward_matches_numerical(layer, x, rng):
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    num_dx = numerical_gradient_array(lambda: layer.forward(x), x, dout)
    assert dx.shape == x.shape
    assert grad_close(dx, num_dx), f"{layer!r}: dx differs from the numerical gradient"
    for name, p in layer.params.items():
        num = numerical_gradient_array(lambda: layer.forward(x), p, dout)
        assert grad_close(layer.grads[name], num), f"{layer!r}: d{name} differs"


# ---------------------------------------------------------------------- layers


@GRAD_SETTINGS
@given(n=sizes, d=sizes, m=sizes, seed=seeds)
def test_linear_backward_matches_numerical_gradient(n, d, m, seed):
    rng = np.random.default_rng(seed)
    layer = Linear(d, m, rng=rng)
    layer.params["b"][:] = rng.standard_normal(m)
    assert_layer_backward_matches_numerical(layer, rng.standard_normal((n, d)), rng)


@pytest.mark.parametrize("n, d, m", [(2, 3, 4), (5, 5, 5), (7, 3, 3), (1, 4, 2)])
def test_linear_backward_on_distinct_and_square_shapes(n, d, m):
    rng = np.random.default_rng(n * 100 + d * 10 + m)
    layer = Linear(d, m, init="glorot", rng=rng)
    assert_layer_backward_matches_numerical(layer, rng.standard_normal((n, d)), rng)


def test_linear_backward_equals_the_functional_pair():
    rng = np.random.default_rng(0)
    layer = Linear(4, 3, rng=1)
    x = rng.standard_normal((5, 4))
    out = layer.forward(x)
    ref_out, cache = linear_forward(x, layer.W, layer.b)
    dout = rng.standard_normal(out.shape)
    dx, dW, db = linear_backward(dout, cache)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(layer.backward(dout), dx)
    np.testing.assert_array_equal(layer.grads["W"], dW)
    np.testing.assert_array_equal(layer.grads["b"], db)


def test_linear_backward_without_input_grad_gives_the_same_weight_gradients():
    rng = np.random.default_rng(1)
    layer = Linear(6, 2, rng=2)
    x = rng.standard_normal((3, 6))
    dout = rng.standard_normal((3, 2))
    layer.forward(x)
    layer.backward(dout)
    full = dict(layer.grads)
    assert layer.backward(dout, input_grad=False) is None
    np.testing.assert_allclose(layer.grads["W"], full["W"], rtol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], full["b"], rtol=1e-12)
    with pytest.raises(ValueError, match=r"\(3, 5\)"):
        layer.backward(np.ones((3, 5)), input_grad=False)


@pytest.mark.parametrize(
    "layer", [ReLU(), LeakyReLU(alpha=0.1), Sigmoid(), Tanh(), Softmax()], ids=repr
)
@GRAD_SETTINGS
@given(n=sizes, d=sizes, seed=seeds)
def test_activation_layer_backward_matches_numerical_gradient(layer, n, d, seed):
    rng = np.random.default_rng(seed)
    assert_layer_backward_matches_numerical(layer, 3 * away_from_zero(rng, (n, d)), rng)


def test_backward_before_forward_says_to_run_forward_first():
    with pytest.raises(RuntimeError, match="before forward"):
        Linear(2, 3).backward(np.ones((1, 3)))
    with pytest.raises(RuntimeError, match="before forward"):
        ReLU().backward(np.ones((1, 3)))


def test_linear_init_schemes_have_their_documented_spread():
    d, m = 400, 300
    he = Linear(d, m, init="he", rng=0).W
    glorot = Linear(d, m, init="glorot", rng=0).W
    normal = Linear(d, m, init="normal", scale=0.3, rng=0).W
    assert he.std() == pytest.approx(np.sqrt(2 / d), rel=0.02)
    bound = np.sqrt(6 / (d + m))
    assert np.abs(glorot).max() <= bound
    assert glorot.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)
    assert normal.std() == pytest.approx(0.3, rel=0.02)
    assert not Linear(d, m, rng=0).b.any()


def test_linear_init_is_reproducible_from_a_seed_or_a_generator():
    np.testing.assert_array_equal(Linear(5, 4, rng=7).W, Linear(5, 4, rng=7).W)
    a = Linear(5, 4, rng=np.random.default_rng(7)).W
    np.testing.assert_array_equal(a, Linear(5, 4, rng=7).W)
    assert not np.array_equal(Linear(5, 4, rng=7).W, Linear(5, 4, rng=8).W)


def test_float32_linear_layer_keeps_float32_through_forward_and_backward():
    layer = Linear(3, 2, rng=0, dtype=np.float32)
    x = np.ones((4, 3), np.float32)
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    assert layer.W.dtype == layer.b.dtype == out.dtype == dx.dtype == np.float32
    assert layer.grads["W"].dtype == np.float32


def test_linear_rejects_bad_arguments_with_clear_messages():
    with pytest.raises(ValueError, match="init must be one of"):
        Linear(2, 2, init="xavier")
    with pytest.raises(ValueError, match="out_features must be a positive integer"):
        Linear(2, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        Linear(2, 2, dtype=np.int32)
    with pytest.raises(ValueError, match=r"expected W of shape \(3, M\)"):
        Linear(2, 2).forward(np.ones((4, 3)))


# ---------------------------------------------------------------------- Sequential gradients


def small_model(d, h, m, loss, seed, activation=Tanh):
    rng = np.random.default_rng(seed)
    model = Sequential([Linear(d, h, rng=rng), activation(), Linear(h, m, rng=rng)], loss=loss)
    for p in model.parameters().values():
        p[...] = rng.standard_normal(p.shape)  # nonzero biases too
    return model


def targets(loss, n, m, rng):
    if loss == "softmax_cross_entropy":
        return rng.integers(0, m, n)
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, (n, m)).astype(float)
    return rng.standard_normal((n, m))


def assert_model_gradients_match(model, X, y):
    value, grads = model.loss(X, y)
    assert set(grads) == set(model.parameters())
    report = check_gradients(lambda: model.loss_value(model.forward(X), y),
                             model.parameters(), grads)
    assert report.passed, str(report)
    assert value == pytest.approx(model.loss_value(model.forward(X), y))


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "binary_cross_entropy", "mse"])
@GRAD_SETTINGS
@given(n=sizes, d=sizes, h=sizes, m=st.integers(2, 5), seed=seeds)
def test_sequential_loss_gradients_match_numerical_gradients(loss, n, d, h, m, seed):
    if loss == "binary_cross_entropy":
        m = 1
    rng = np.random.default_rng(seed)
    model = small_model(d, h, m, loss, seed)
    assert_model_gradients_match(model, rng.standard_normal((n, d)), targets(loss, n, m, rng))


@pytest.mark.parametrize("activation", [ReLU, LeakyReLU, Sigmoid, Tanh])
@pytest.mark.parametrize("n, d, h, m", [(3, 4, 5, 2), (4, 4, 4, 4), (6, 2, 7, 3)])
def test_three_layer_model_gradients_on_distinct_and_square_shapes(activation, n, d, h, m):
    rng = np.random.default_rng(n + d + h + m)
    model = Sequential([Linear(d, h, rng=1), activation(), Linear(h, h, rng=2), activation(),
                        Linear(h, m, rng=3)])
    for p in model.parameters().values():
        p[...] = away_from_zero(rng, p.shape, 0.1)
    assert_model_gradients_match(model, rng.standard_normal((n, d)), rng.integers(0, m, n))


def test_sequential_backward_returns_the_input_gradient():
    rng = np.random.default_rng(3)
    model = small_model(3, 4, 2, "mse", 3)
    X = rng.standard_normal((5, 3))
    dout = rng.standard_normal((5, 2))
    model.forward(X)
    dx = model.backward(dout)
    np.testing.assert_allclose(dx, numerical_gradient_array(lambda: model.forward(X), X, dout),
                               rtol=1e-6, atol=1e-9)


def test_sequential_parameters_are_keyed_by_layer_index_and_are_the_arrays_themselves():
    model = Sequential([Linear(2, 3), ReLU(), Linear(3, 1)], loss="mse")
    params = model.parameters()
    assert list(params) == ["0.W", "0.b", "2.W", "2.b"]
    assert params["2.W"] is model.layers[2].W
    model.layers[0].trainable = False
    assert list(model.parameters(trainable_only=True)) == ["2.W", "2.b"]


def test_numbered_keys_are_the_exercises_W1_b1_W2_b2_for_parameters_and_gradients():
    model = Sequential([Linear(2, 3, rng=0), ReLU(), Linear(3, 2, rng=1)])
    _, grads = model.loss(np.ones((4, 2)), np.array([0, 1, 1, 0]))
    params = model.parameters(keys="numbered")
    assert list(params) == ["W1", "b1", "W2", "b2"]
    assert params["W2"] is model.parameters()["2.W"]
    numbered = model.gradients(keys="numbered")
    assert list(numbered) == list(params)
    assert numbered["W1"] is grads["0.W"] and numbered["b2"] is grads["2.b"]
    model.layers[0].trainable = False  # freezing does not renumber
    assert list(model.parameters(trainable_only=True, keys="numbered")) == ["W2", "b2"]
    with pytest.raises(ValueError, match="numbered"):
        model.parameters(keys="W1")


def test_cross_entropy_model_refuses_a_final_softmax_or_sigmoid_layer():
    with pytest.raises(ValueError, match="already applies it"):
        Sequential([Linear(2, 3), Softmax()])
    with pytest.raises(ValueError, match="already applies it"):
        Sequential([Linear(2, 1), Sigmoid()], loss="binary_cross_entropy")
    with pytest.raises(ValueError, match="loss must be one of"):
        Sequential([Linear(2, 1)], loss="hinge")


def test_predict_gives_probabilities_and_predict_classes_their_argmax():
    rng = np.random.default_rng(4)
    model = small_model(3, 5, 4, "softmax_cross_entropy", 4)
    X = rng.standard_normal((6, 3))
    p = model.predict(X)
    np.testing.assert_allclose(p.sum(axis=1), 1)
    np.testing.assert_array_equal(model.predict_classes(X), p.argmax(axis=1))
    binary = small_model(3, 5, 1, "binary_cross_entropy", 4)
    pb = binary.predict(X)
    assert ((pb > 0) & (pb < 1)).all()
    np.testing.assert_array_equal(binary.predict_classes(X), (pb[:, 0] > 0.5).astype(int))


# ---------------------------------------------------------------------- freezing


def test_frozen_layer_is_not_updated_but_gradients_flow_through_it():
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((40, 3)), rng.integers(0, 2, 40)
    model = Sequential([Linear(3, 4, rng=1), Tanh(), Linear(4, 4, rng=2), Tanh(),
                        Linear(4, 2, rng=3)])
    twin = Sequential([Linear(3, 4, rng=1), Tanh(), Linear(4, 4, rng=2), Tanh(),
                       Linear(4, 2, rng=3)])
    model.layers[2].trainable = False
    frozen_before = model.layers[2].W.copy(), model.layers[2].b.copy()
    first_before = model.layers[0].W.copy()
    # the gradient reaching layer 0 through the frozen layer is the unfrozen twin's
    _, grads = model.loss(X, y)
    _, twin_grads = twin.loss(X, y)
    np.testing.assert_array_equal(grads["0.W"], twin_grads["0.W"])
    model.fit(X, y, optimizer=SGD(lr=0.1), epochs=3, batch_size=8, verbose=False)
    np.testing.assert_array_equal(model.layers[2].W, frozen_before[0])
    np.testing.assert_array_equal(model.layers[2].b, frozen_before[1])
    assert not np.allclose(model.layers[0].W, first_before)


def test_fit_refuses_a_model_whose_layers_are_all_frozen():
    model = Sequential([Linear(2, 2)])
    model.layers[0].trainable = False
    with pytest.raises(ValueError, match="no trainable parameters"):
        model.fit(np.ones((3, 2)), np.array([0, 1, 0]), verbose=False)


# ---------------------------------------------------------------------- weights


def test_get_and_set_weights_round_trip_in_keras_order():
    a = Sequential([Linear(3, 5, rng=1), ReLU(), Linear(5, 2, rng=2)])
    b = Sequential([Linear(3, 5, rng=8), ReLU(), Linear(5, 2, rng=9)])
    weights = a.get_weights()
    assert [w.shape for w in weights] == [(3, 5), (5,), (5, 2), (2,)]
    w_array = b.layers[0].W
    b.set_weights(weights)
    assert b.layers[0].W is w_array  # written in place: optimiser state stays attached
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    weights[0][0, 0] += 1.0  # get_weights returns copies
    assert a.layers[0].W[0, 0] != weights[0][0, 0]


def test_set_weights_names_the_mismatched_shape_and_writes_nothing():
    model = Sequential([Linear(3, 5, rng=1), ReLU(), Linear(5, 2, rng=2)])
    before = model.get_weights()
    bad = [np.zeros((3, 5)), np.zeros(5), np.zeros((2, 5)), np.zeros(2)]
    with pytest.raises(ValueError, match=r"weights\[2\] has shape \(2, 5\).*'2.W'.*\(5, 2\)"):
        model.set_weights(bad)
    for w0, w1 in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(w0, w1)
    with pytest.raises(ValueError, match="got 2 arrays but the model has 4"):
        model.set_weights(before[:2])


def test_set_weights_keeps_the_models_dtype():
    model = Sequential([Linear(2, 2, dtype=np.float32)])
    model.set_weights([np.ones((2, 2)), np.ones(2)])
    assert model.layers[0].W.dtype == np.float32


@pytest.mark.keras
def test_set_weights_accepts_a_keras_dense_models_weights():
    import os

    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    kmodel = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="tanh"),
                               keras.layers.Dense(3)])
    model = Sequential([Linear(4, 6), Tanh(), Linear(6, 3)])
    model.set_weights(kmodel.get_weights())
    X = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(model.forward(X), np.asarray(kmodel(X)), rtol=1e-5, atol=1e-6)
