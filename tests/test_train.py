"""bplib.train: the training loop learns, reports its history, and explains bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bplib import SGD, Adam, History, Linear, ReLU, Sequential, Tanh, evaluate, fit, predict

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([0, 1, 1, 0])


def blobs(n=60, seed=0):
    """Two well-separated Gaussian blobs in 2-D, labels 0 and 1."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.standard_normal((n, 2)) * 0.5 + np.where(y[:, None] == 1, 2.0, -2.0)
    return X, y


def tiny_classifier(seed=0):
    return Sequential([Linear(2, 8, rng=seed), Tanh(), Linear(8, 2, rng=seed + 1)])


# ---------------------------------------------------------------------- it learns


def test_two_layer_network_trained_by_backprop_classifies_xor_perfectly():
    model = Sequential([Linear(2, 4, rng=0), Tanh(), Linear(4, 2, rng=1)])
    before = (model.predict_classes(XOR_X) == XOR_Y).mean()
    history = fit(model, XOR_X, XOR_Y, optimizer=SGD(lr=0.5, momentum=0.9), epochs=200,
                  batch_size=4, verbose=False)
    assert before < 1
    np.testing.assert_array_equal(model.predict_classes(XOR_X), XOR_Y)
    assert history.history["accuracy"][-1] == 1.0
    assert history.history["loss"][-1] < 0.05


def test_sequential_reaches_95_percent_test_accuracy_on_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits.target))
    train, test = order[:1350], order[1350:]
    mean = digits.data[train].mean(axis=0)
    std = digits.data[train].std(axis=0)
    std[std == 0] = 1
    X_train = (digits.data[train] - mean) / std
    X_test = (digits.data[test] - mean) / std
    model = Sequential([Linear(64, 64, rng=0), ReLU(), Linear(64, 10, rng=1)])
    model.fit(X_train, digits.target[train], optimizer=Adam(lr=0.003), epochs=15,
              batch_size=32, verbose=False)
    assert model.evaluate(X_test, digits.target[test])["accuracy"] >= 0.95


def test_binary_cross_entropy_and_mse_models_train_too():
    X, y = blobs()
    binary = Sequential([Linear(2, 1, rng=0)], loss="binary_cross_entropy")
    binary.fit(X, y, optimizer=SGD(lr=0.5), epochs=20, verbose=False)
    assert binary.evaluate(X, y)["accuracy"] == 1.0
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 2))
    t = X @ np.array([1.5, -2.0]) + 0.5 + 0.01 * rng.standard_normal(len(X))
    regression = Sequential([Linear(2, 1, rng=0)], loss="mse")
    history = regression.fit(X, t, optimizer=SGD(lr=0.2), epochs=100, verbose=False)
    assert history.history["loss"][-1] < 1e-3
    assert set(history.history) == {"loss"}
    np.testing.assert_allclose(regression.layers[0].W[:, 0], [1.5, -2.0], atol=0.02)


# ---------------------------------------------------------------------- history and output


def test_history_has_one_value_per_epoch_for_each_keras_metric():
    X, y = blobs()
    history = fit(tiny_classifier(), X, y, epochs=4, validation_data=(X[:10], y[:10]),
                  verbose=False)
    assert isinstance(history, History)
    assert history.epochs == [1, 2, 3, 4]
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 for v in history.history.values())


def test_val_metrics_are_those_of_evaluate_after_the_epoch():
    X, y = blobs()
    model = tiny_classifier()
    history = fit(model, X, y, epochs=2, validation_data=(X[:20], y[:20]), verbose=False)
    result = evaluate(model, X[:20], y[:20])
    assert history.history["val_loss"][-1] == pytest.approx(result["loss"])
    assert history.history["val_accuracy"][-1] == result["accuracy"]


def test_evaluate_matches_the_loss_and_predictions_on_the_whole_set():
    X, y = blobs(n=50)
    model = tiny_classifier()
    result = evaluate(model, X, y, batch_size=7)  # batching must not change the mean
    assert result["loss"] == pytest.approx(model.loss(X, y)[0])
    assert result["accuracy"] == pytest.approx((model.predict_classes(X) == y).mean())
    np.testing.assert_array_equal(predict(model, X), model.predict(X))


def test_verbose_true_prints_one_line_per_epoch(capsys):
    X, y = blobs()
    fit(tiny_classifier(), X, y, epochs=3, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert re.match(r"epoch 1/3 +loss \d\.\d{4} +accuracy \d\.\d{4}", lines[0])


def test_verbose_none_is_quiet_when_stdout_is_not_a_terminal(capsys):
    X, y = blobs()
    fit(tiny_classifier(), X, y, epochs=2)  # capsys's stdout is not a tty
    assert capsys.readouterr().out == ""


def test_the_same_seed_gives_the_same_model_and_another_seed_another():
    X, y = blobs()
    runs = []
    for seed in (3, 3, 4):
        model = tiny_classifier()
        fit(model, X, y, epochs=2, batch_size=8, seed=seed, verbose=False)
        runs.append(model.get_weights()[0])
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_float32_model_trains_in_float32():
    X, y = blobs()
    model = Sequential([Linear(2, 4, rng=0, dtype=np.float32), ReLU(),
                        Linear(4, 2, rng=1, dtype=np.float32)])
    model.fit(X, y, epochs=2, verbose=False)
    assert all(w.dtype == np.float32 for w in model.get_weights())


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_inputs_raise_a_value_error_naming_the_row(bad):
    X, y = blobs()
    X[7, 1] = bad
    with pytest.raises(ValueError, match=r"X contains 1 non-finite value.*first in row 7"):
        fit(tiny_classifier(), X, y, verbose=False)
    X, _ = blobs()
    t = np.ones(len(X))
    t[3] = bad
    with pytest.raises(ValueError, match=r"y contains 1 non-finite value.*first in row 3"):
        fit(Sequential([Linear(2, 1)], loss="mse"), X, t, verbose=False)
    with pytest.raises(ValueError, match="X_val contains 1 non-finite"):
        fit(tiny_classifier(), *blobs(), validation_data=(X_bad_rows(bad), y[:4]),
            verbose=False)


def X_bad_rows(bad):
    X = np.zeros((4, 2))
    X[2, 0] = bad
    return X


def test_mismatched_rows_of_x_and_y_raise_a_value_error_naming_both_shapes():
    X, y = blobs(n=10)
    with pytest.raises(ValueError, match=r"X has 10 rows \(shape \(10, 2\)\) but y has shape "
                                         r"\(9,\)"):
        fit(tiny_classifier(), X, y[:9], verbose=False)
    with pytest.raises(ValueError, match=r"X must be 2-D .* got shape \(10,\).*reshape\(-1, 1\)"):
        fit(tiny_classifier(), X[:, 0], y, verbose=False)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        fit(tiny_classifier(), X, y, batch_size=0, verbose=False)


def diverging_regression():
    """A model whose loss overflows on the rows with huge (finite) inputs."""
    model = Sequential([Linear(1, 1)], loss="mse")
    model.set_weights([np.ones((1, 1)), np.zeros(1)])
    X = np.ones((8, 1))
    X[4:] = 1e200  # finite, but (1e200)**2 overflows
    return model, X, np.zeros(8)


def test_a_nan_or_inf_loss_raises_floating_point_error_naming_epoch_and_batch():
    model, X, t = diverging_regression()
    with pytest.raises(FloatingPointError) as info:
        fit(model, X, t, optimizer=SGD(lr=1e-3), epochs=3, batch_size=4, shuffle=False,
            verbose=False)
    message = str(info.value)
    assert "epoch 1 of 3, batch 2 of 2" in message
    assert "counted from 1" in message
    assert "smaller learning rate" in message
    assert "lr=0.001" in message
    # the step on the bad batch was not taken
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_divergence_from_a_huge_learning_rate_is_reported_not_warned():
    X, y = blobs()
    with pytest.raises(FloatingPointError, match=r"epoch \d+ of 50, batch \d+ of 2"):
        fit(Sequential([Linear(2, 1, rng=0)], loss="mse"), X * 1e3, y.astype(float),
            optimizer=SGD(lr=1e3), epochs=50, batch_size=32, verbose=False)
