"""bplib.train: the training loop learns, reports its history, and explains bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bplib import (
    SGD,
    Adam,
    EarlyStopping,
    History,
    Linear,
    ReLU,
    Sequential,
    Tanh,
    evaluate,
    fit,
    predict,
)

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


# ---------------------------------------------------------------------- early stopping


def monitored(values, **kwargs) -> EarlyStopping:
    """An EarlyStopping fed ``values`` of val_loss, one per epoch, until it asks to stop."""
    stop = EarlyStopping(**kwargs)
    stop.on_train_begin(tiny_classifier())
    for epoch, value in enumerate(values, 1):
        if stop.on_epoch_end(epoch, {"val_loss": value, "val_accuracy": -value}):
            break
    return stop


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    stop = monitored([1.0, 0.8, 0.9, 0.85, 0.81, 0.5], patience=3)
    assert (stop.best, stop.best_epoch, stop.stopped_epoch) == (0.8, 2, 5)
    assert monitored([1.0, 0.8, 0.9, 0.85, 0.5], patience=3).stopped_epoch == 0


def test_early_stopping_counts_only_improvements_larger_than_min_delta():
    stop = monitored([1.0, 0.95, 0.91, 0.5], patience=2, min_delta=0.1)
    assert (stop.best, stop.best_epoch, stop.stopped_epoch) == (1.0, 1, 3)


def test_early_stopping_maximises_an_accuracy_in_auto_mode():
    stop = monitored([1.0, 0.8, 0.9, 0.85], monitor="val_accuracy", patience=2)
    assert (stop.best, stop.best_epoch, stop.stopped_epoch) == (-0.8, 2, 4)


def test_an_accuracy_must_rise_by_more_than_min_delta_to_count():
    # val_accuracy is -val_loss here: -1.0, -0.95, -0.91, -0.5
    stop = monitored([1.0, 0.95, 0.91, 0.5], monitor="val_accuracy", patience=2,
                     min_delta=0.1)
    assert (stop.best, stop.best_epoch, stop.stopped_epoch) == (-1.0, 1, 3)


def test_fit_stops_early_and_restores_the_weights_of_the_best_epoch():
    X, y = blobs()
    X_val, y_val = blobs(n=20, seed=1)
    weights_after = []

    class Recorder:  # a second callback sees every epoch's weights
        def on_train_begin(self, model):
            self.model = model

        def on_epoch_end(self, epoch, logs):
            weights_after.append([w.copy() for w in self.model.get_weights()])
            return False

        def on_train_end(self):
            pass

    model = tiny_classifier()
    stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    history = fit(model, X + 1.5 * np.random.default_rng(2).standard_normal(X.shape), y,
                  optimizer=Adam(lr=0.05), epochs=200, batch_size=60,
                  validation_data=(X_val, y_val), callbacks=[Recorder(), stop])
    val_loss = history.history["val_loss"]
    assert 0 < stop.stopped_epoch < 200 and len(val_loss) == stop.stopped_epoch
    assert stop.best_epoch == int(np.argmin(val_loss)) + 1
    assert stop.stopped_epoch - stop.best_epoch == 3
    for restored, recorded in zip(model.get_weights(), weights_after[stop.best_epoch - 1],
                                  strict=True):
        np.testing.assert_array_equal(restored, recorded)
    assert evaluate(model, X_val, y_val)["loss"] == pytest.approx(min(val_loss))


def test_without_restore_best_weights_the_model_keeps_its_last_weights():
    X, y = blobs()
    X_val, y_val = blobs(n=20, seed=1)
    model = tiny_classifier()
    stop = EarlyStopping(monitor="val_loss", patience=1)
    history = fit(model, X + 1.5 * np.random.default_rng(2).standard_normal(X.shape), y,
                  optimizer=Adam(lr=0.05), epochs=200, batch_size=60,
                  validation_data=(X_val, y_val), callbacks=[stop])
    assert stop.stopped_epoch == len(history.epochs) < 200
    last = evaluate(model, X_val, y_val)["loss"]
    assert last == pytest.approx(history.history["val_loss"][-1]) and last > stop.best


def test_early_stopping_on_a_metric_fit_does_not_log_names_the_logs():
    X, y = blobs()
    with pytest.raises(ValueError, match=r"monitors 'val_loss'.*loss, accuracy.*validation_data"):
        fit(tiny_classifier(), X, y, epochs=2, callbacks=[EarlyStopping()])


def test_fit_refuses_a_callback_without_the_three_methods():
    X, y = blobs()
    with pytest.raises(TypeError, match="lacks on_train_begin, on_train_end"):
        fit(tiny_classifier(), X, y, epochs=1, callbacks=[type("Half", (), {
            "on_epoch_end": lambda self, epoch, logs: False})()])


@pytest.mark.parametrize("kwargs", [dict(mode="up"), dict(patience=-1), dict(patience=1.5),
                                    dict(min_delta=-0.1), dict(min_delta="0.1")])
def test_early_stopping_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        EarlyStopping(**kwargs)


def test_early_stopping_takes_a_numpy_float_for_min_delta():
    assert monitored([1.0, 0.95, 0.5], patience=1, min_delta=np.float32(0.1)).stopped_epoch == 2


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
