"""bplib and Keras 3 (JAX backend) compute the same network: outputs, gradients, training.

Two networks, each built twice with the same weights (``bm.set_weights(km.get_weights())``):

- binary: 30 -> Dense(16, relu) -> Dense(1, sigmoid) on breast cancer,
  ``loss="binary_cross_entropy"`` against ``keras.losses.BinaryCrossentropy()``;
- softmax: 64 -> Dense(32, relu) -> Dense(10) logits on digits,
  ``loss="softmax_cross_entropy"`` against ``SparseCategoricalCrossentropy(from_logits=True)``.

The biases are set to random non-zero values first (Keras starts them at zero, which
would hide a missing bias). Everything is float32, so the tolerances are float32's:
a relative error of a few 1e-7 per operation, a few 1e-6 after several epochs. They
are still tight enough to catch a transposed kernel, a missing bias, a loss summed
instead of averaged or halved; ``test_the_tolerance_rejects_typical_mistakes``
checks that on the numbers of this file.
"""

from __future__ import annotations

import os
import types

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "jax"

import bplib  # noqa: E402

keras = pytest.importorskip("keras")
jax = pytest.importorskip("jax")

pytestmark = [pytest.mark.keras, pytest.mark.slow]

# float32: eps = 1.2e-7. Measured: outputs and gradients differ by < 5e-7 relative,
# weights after 5 epochs by < 3e-7; the tolerances leave a factor of about 10.
RTOL, ATOL = 1e-5, 1e-6
RTOL_TRAINED, ATOL_TRAINED = 2e-5, 2e-6

CASES = {
    "binary": dict(sizes=(30, 16, 1), data="breast_cancer", bplib_loss="binary_cross_entropy"),
    "softmax": dict(sizes=(64, 32, 10), data="digits", bplib_loss="softmax_cross_entropy"),
}


def assert_agree(actual, expected, what: str, rtol: float = RTOL, atol: float = ATOL) -> None:
    """Assert ``|actual - expected| <= atol + rtol |expected|`` elementwise, naming ``what``."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (
        f"{what}: bplib gives shape {actual.shape} but Keras gives {expected.shape}")
    excess = np.abs(actual - expected) - (atol + rtol * np.abs(expected))
    worst = np.unravel_index(np.argmax(excess), excess.shape) if excess.size else ()
    assert excess.size == 0 or excess[worst] <= 0, (
        f"{what}: bplib and Keras differ by {abs(actual[worst] - expected[worst]):.3g} at index "
        f"{tuple(int(i) for i in worst)} (bplib {actual[worst]:.8g}, Keras {expected[worst]:.8g}); "
        f"allowed {atol:g} + {rtol:g} * |Keras|")


def data(case: str):
    """The case's float32 training split and labels (float32 column for binary)."""
    cfg = CASES[case]
    split = getattr(bplib, f"load_{cfg['data']}")(seed=0)
    X = split.X_train.astype(np.float32)
    y = split.y_train.astype(np.float32).reshape(-1, 1) if case == "binary" else split.y_train
    return X, y


def keras_model(case: str):
    """The Keras network with seeded Glorot kernels and random non-zero biases."""
    d, h, k = CASES[case]["sizes"]
    keras.utils.set_random_seed(0)
    out_activation = "sigmoid" if case == "binary" else None
    km = keras.Sequential([keras.Input((d,)), keras.layers.Dense(h, activation="relu"),
                           keras.layers.Dense(k, activation=out_activation)])
    rng = np.random.default_rng(1)
    km.set_weights([w if w.ndim == 2 else rng.normal(0, 0.1, w.shape).astype(np.float32)
                    for w in km.get_weights()])
    return km


def keras_loss(case: str):
    if case == "binary":
        return keras.losses.BinaryCrossentropy()
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def bplib_twin(case: str, km):
    """The bplib Sequential with the same layers, loss and weights as ``km``."""
    d, h, k = CASES[case]["sizes"]
    bm = bplib.Sequential([bplib.Linear(d, h, dtype=np.float32), bplib.ReLU(),
                           bplib.Linear(h, k, dtype=np.float32)], loss=CASES[case]["bplib_loss"])
    bm.set_weights(km.get_weights())
    return bm


def keras_loss_and_grads(km, loss_fn, x, y):
    """Keras's loss on a batch and its gradients with respect to the trainable weights."""
    trainable = [v.value for v in km.trainable_variables]
    non_trainable = [v.value for v in km.non_trainable_variables]

    def f(tv):
        out, _ = km.stateless_call(tv, non_trainable, x)
        return loss_fn(y, out)

    value, grads = jax.value_and_grad(f)(trainable)
    return float(value), [np.asarray(g) for g in grads]


@pytest.fixture(params=list(CASES))
def case(request) -> str:
    return request.param


def test_bplib_and_keras_predict_the_same_probabilities(case):
    X, _ = data(case)
    km = keras_model(case)
    bm = bplib_twin(case, km)
    k_prob = np.asarray(km.predict(X, verbose=0))
    if case == "softmax":
        k_prob = np.asarray(keras.ops.softmax(k_prob))
        assert_agree(bm.forward(X), km.predict(X, verbose=0), "the logits")
    b_prob = bm.predict(X).reshape(k_prob.shape)
    assert_agree(b_prob, k_prob, "the predicted probabilities")


def test_bplib_and_keras_have_the_same_loss_and_gradients_on_a_batch(case):
    X, y = data(case)
    x, t = X[:32], y[:32]
    km = keras_model(case)
    bm = bplib_twin(case, km)
    k_loss, k_grads = keras_loss_and_grads(km, keras_loss(case), x, t)
    b_loss, b_grads = bm.loss(x, t)
    assert_agree(b_loss, k_loss, "the loss of the first batch")
    assert list(b_grads) == ["0.W", "0.b", "2.W", "2.b"]
    for (name, g), kg in zip(b_grads.items(), k_grads, strict=True):
        assert_agree(g, kg, f"the gradient of {name}", atol=ATOL * max(1.0, np.abs(kg).max()))


def test_five_epochs_of_sgd_give_the_same_losses_and_weights(case):
    X, y = data(case)
    km = keras_model(case)
    bm = bplib_twin(case, km)
    km.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=keras_loss(case))
    k_hist = km.fit(X, y, epochs=5, batch_size=32, shuffle=False, verbose=0)
    b_hist = bm.fit(X, y, optimizer=bplib.SGD(lr=0.1), epochs=5, batch_size=32, shuffle=False)
    assert_agree(b_hist.history["loss"], k_hist.history["loss"], "the loss per epoch",
                 RTOL_TRAINED, ATOL_TRAINED)
    for i, (bw, kw) in enumerate(zip(bm.get_weights(), km.get_weights(), strict=True)):
        assert_agree(bw, kw, f"weights[{i}] after 5 epochs", RTOL_TRAINED, ATOL_TRAINED)


def test_the_tolerance_rejects_typical_mistakes():
    """A transposed kernel, a missing bias or a halved loss all fail ``assert_agree``."""
    X, y = data("softmax")
    x, t = X[:32], y[:32]
    km = keras_model("softmax")
    weights = km.get_weights()
    k_loss, k_grads = keras_loss_and_grads(km, keras_loss("softmax"), x, t)
    bm = bplib_twin("softmax", km)
    b_loss, b_grads = bm.loss(x, t)

    wrong = bplib_twin("softmax", km)
    wrong.layers[0].params["b"][...] = 0.0  # a missing bias
    with pytest.raises(AssertionError, match="the logits"):
        assert_agree(wrong.forward(x), km.predict(x, verbose=0), "the logits")
    with pytest.raises(AssertionError, match="the loss"):
        assert_agree(b_loss / 2, k_loss, "the loss")
    with pytest.raises(AssertionError, match="the gradient"):
        assert_agree(b_grads["2.W"] * 32, k_grads[2], "the gradient")  # summed, not averaged
    # A square kernel used transposed (same shape, so only the values can tell).
    square = weights[0][:32, :32]
    with pytest.raises(AssertionError, match="x @ W"):
        assert_agree(x[:, :32] @ square.T, x[:, :32] @ square, "x @ W")


@pytest.mark.parametrize("outputs", [1, 2, 5])
def test_keras_mse_gradient_is_2_over_k_times_bplibs(outputs):
    """The FAQ's claim: Keras's "mse" averages over the batch and the K outputs without
    the 1/2, bplib's ``mse_loss`` halves and divides by the batch only, so Keras's
    gradient is 2/K times bplib's (twice as large for one output only)."""
    rng = np.random.default_rng(outputs)
    y = rng.normal(size=(8, outputs))
    t = rng.normal(size=(8, outputs))
    _, d_bplib = bplib.mse_loss(y, t)
    mse = keras.losses.MeanSquaredError()
    d_keras = np.asarray(jax.grad(lambda v: mse(t, v))(jax.numpy.asarray(y)))
    np.testing.assert_allclose(d_keras, (2 / outputs) * d_bplib, rtol=1e-5, atol=1e-7)


def _keras_adam_steps(grads, eps):
    """Keras 3's Adam on one variable, fed ``grads`` one step at a time."""
    var = keras.Variable(np.zeros(grads.shape[1:], dtype="float32"))
    opt = keras.optimizers.Adam(learning_rate=0.01, epsilon=eps)
    for g in grads:
        opt.apply_gradients([(jax.numpy.asarray(g), var)])
    return np.asarray(var.numpy(), np.float64)


def _bplib_adam_steps(grads, eps_of_t):
    w, m, v = (np.zeros(grads.shape[1:], np.float32) for _ in range(3))
    for t, g in enumerate(grads, start=1):
        w, m, v = bplib.adam_update(w, g, m, v, t, np.float32(0.01), np.float32(0.9),
                                    np.float32(0.999), np.float32(eps_of_t(t)))
    return w.astype(np.float64)


def test_keras_adam_is_adam_update_with_epsilon_hat():
    """bplib's Adam docstring: Keras adds eps to the uncorrected sqrt(v), so its step t is
    adam_update with eps / sqrt(1 - beta2**t); with gradients near eps the plain form
    differs visibly."""
    eps = 1e-7
    grads = np.random.default_rng(0).normal(scale=1e-7, size=(5, 4)).astype(np.float32)
    keras_w = _keras_adam_steps(grads, eps)
    hat = _bplib_adam_steps(grads, lambda t: eps / np.sqrt(1 - 0.999**t))
    plain = _bplib_adam_steps(grads, lambda t: eps)
    np.testing.assert_allclose(keras_w, hat, rtol=1e-5)
    assert np.max(np.abs(keras_w - plain) / np.abs(keras_w)) > 0.1


def test_keras_adam_and_adam_update_agree_when_gradients_dwarf_epsilon():
    grads = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(_keras_adam_steps(grads, 1e-7),
                               _bplib_adam_steps(grads, lambda t: 1e-7), rtol=1e-4)  # float32


def _stopping_points(callback, values, monitor):
    """Feed ``values`` of ``monitor``, one per epoch, to ``callback`` until it stops.

    Returns (epochs run, best epoch counted from 1, best value); works for Keras's
    EarlyStopping (epochs from 0, ``model.stop_training``) and bplib's (epochs from 1,
    ``on_epoch_end`` returns True).
    """
    model = types.SimpleNamespace(stop_training=False, get_weights=list)
    if isinstance(callback, keras.callbacks.EarlyStopping):
        callback.set_model(model)
        callback.on_train_begin()
        for epoch, value in enumerate(values):
            callback.on_epoch_end(epoch, {monitor: value})
            if model.stop_training:
                break
        return epoch + 1, callback.best_epoch + 1, float(callback.best)
    callback.on_train_begin(model)
    for epoch, value in enumerate(values, start=1):
        if callback.on_epoch_end(epoch, {monitor: value}):
            break
    return epoch, callback.best_epoch, float(callback.best)


@pytest.mark.parametrize("monitor, drift", [("val_loss", -0.01), ("val_accuracy", 0.01)])
@pytest.mark.parametrize("patience", [0, 1, 3, 10])
@pytest.mark.parametrize("min_delta", [0.0, 0.01])
def test_early_stopping_stops_where_keras_stops(monitor, drift, patience, min_delta):
    """On random walks of a validation loss (smaller is better) or accuracy (larger is
    better), bplib's EarlyStopping stops at the epoch where Keras's stops, with the
    same best epoch and value (Keras counts epochs from 0)."""
    rng = np.random.default_rng(patience)
    for _ in range(50):
        values = np.round(1 + np.cumsum(rng.normal(drift, 0.03, size=60)), 3)
        kwargs = dict(monitor=monitor, patience=patience, min_delta=min_delta)
        # Keras's "auto" reads the direction from a compiled model's metrics; here, with
        # no model, it must be told
        mode = "min" if monitor == "val_loss" else "max"
        keras_stop = keras.callbacks.EarlyStopping(mode=mode, **kwargs)
        bplib_stop = bplib.EarlyStopping(**kwargs)  # "auto"
        assert (_stopping_points(bplib_stop, values, monitor)
                == _stopping_points(keras_stop, values, monitor)), list(values)
