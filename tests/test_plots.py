"""bplib.plots: each helper returns a figure with the expected artists; matplotlib loads lazily."""

from __future__ import annotations

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bplib import data, plots  # noqa: E402
from bplib import functional as F  # noqa: E402
from bplib.gradcheck import TOLERANCE, check_gradients  # noqa: E402
from bplib.train import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


HISTORY = {
    "loss": [1.0, 0.6, 0.4, 0.3],
    "accuracy": [0.5, 0.7, 0.8, 0.9],
    "val_loss": [1.1, 0.8, 0.6, 0.6],
    "val_accuracy": [0.4, 0.6, 0.7, 0.75],
}


def test_importing_bplib_and_bplib_plots_does_not_import_matplotlib():
    code = (
        "import sys, bplib, bplib.plots, bplib.data, bplib.prehistory; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plot_functions_never_call_show(monkeypatch):
    def refuse():
        raise AssertionError("plt.show() was called")

    monkeypatch.setattr(plt, "show", refuse)
    X, y = data.make_moons(n=40)
    plots.plot_decision_boundary(lambda P: (P[:, 0] > 0.5).astype(int), X, y, resolution=20)
    plots.plot_history(HISTORY)
    plots.plot_activations()


# ----------------------------------------------------------------------------- decision boundary


def test_decision_boundary_for_labels_draws_regions_and_the_points():
    X, y = data.make_moons(n=60)
    ax = plots.plot_decision_boundary(lambda P: (P[:, 1] < 0.25).astype(int), X, y, resolution=30)
    assert isinstance(ax, Axes)
    assert len(ax.collections) == 2  # filled regions and the scatter of the data
    offsets = ax.collections[-1].get_offsets()
    np.testing.assert_allclose(offsets, X)


def test_decision_boundary_for_probabilities_adds_the_half_contour():
    X, y = data.make_moons(n=60)
    seen = {}

    def predict(P):
        seen["shape"] = P.shape
        return F.sigmoid(3 * (P[:, 0] - 0.5))

    ax = plots.plot_decision_boundary(predict, X, y, resolution=25)
    assert seen["shape"] == (25 * 25, 2)
    assert len(ax.collections) == 3  # probability shading, the 0.5 contour, the points


def test_decision_boundary_takes_class_probabilities_and_draws_their_argmax():
    X, y = data.make_spirals(n_per_class=20)
    ax = plots.plot_decision_boundary(lambda P: F.softmax(P @ np.ones((2, 3))), X, y, resolution=20)
    assert len(ax.collections) == 2


def test_decision_boundary_draws_into_a_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    X, y = data.make_circles(n=40)
    out = plots.plot_decision_boundary(lambda P: np.zeros(len(P), int), X, y, ax=right,
                                       resolution=10)
    assert out is right
    assert len(left.collections) == 0 and len(right.collections) == 2


def test_decision_boundary_rejects_predict_output_of_the_wrong_shape():
    X, y = data.make_moons(n=20)
    with pytest.raises(ValueError, match=r"predict returned shape \(3,\) for 100 points"):
        plots.plot_decision_boundary(lambda P: np.zeros(3), X, y, resolution=10)


def test_decision_boundary_rejects_scores_that_are_not_probabilities():
    X, y = data.make_moons(n=20)
    with pytest.raises(ValueError, match=r"neither integer labels nor probabilities"):
        plots.plot_decision_boundary(lambda P: 5 * P[:, 0] + 0.1, X, y, resolution=10)


def test_decision_boundary_needs_two_features():
    with pytest.raises(ValueError, match=r"X has shape \(5, 3\).*\(N, 2\)"):
        plots.plot_decision_boundary(lambda P: P[:, 0], np.zeros((5, 3)), np.zeros(5))


# ----------------------------------------------------------------------------- history


@pytest.mark.parametrize("history", [HISTORY, History(history=HISTORY)], ids=["dict", "History"])
def test_plot_history_draws_train_and_validation_per_metric(history):
    fig = plots.plot_history(history)
    assert isinstance(fig, Figure)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy"]
    for ax, metric in zip(fig.axes, ["loss", "accuracy"], strict=True):
        train, val = ax.get_lines()
        np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3, 4])
        np.testing.assert_array_equal(train.get_ydata(), HISTORY[metric])
        np.testing.assert_array_equal(val.get_ydata(), HISTORY[f"val_{metric}"])


def test_plot_history_skips_missing_metrics_and_validation():
    fig = plots.plot_history({"loss": [3.0, 2.0, 1.0]})
    assert len(fig.axes) == 1
    assert len(fig.axes[0].get_lines()) == 1


def test_plot_history_into_given_axes():
    fig, axes = plt.subplots(1, 2)
    out = plots.plot_history(HISTORY, ax=axes)
    assert out is fig
    assert [len(ax.get_lines()) for ax in axes] == [2, 2]


def test_plot_history_names_the_available_keys_when_nothing_matches():
    with pytest.raises(ValueError, match=r"\('mae',\).*\['loss'\]"):
        plots.plot_history({"loss": [1.0]}, metrics=("mae",))


def test_plot_history_rejects_axes_count_mismatch():
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="1 Axes for 2 metrics"):
        plots.plot_history(HISTORY, ax=ax)


# ----------------------------------------------------------------------------- activations


def test_plot_activations_draws_each_function_and_its_backward_derivative():
    fig = plots.plot_activations()
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["sigmoid", "tanh", "relu", "leaky_relu"]
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    f_line, d_line = lines["sigmoid(x)"], lines["derivative"]
    x = f_line.get_xdata()
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(f_line.get_ydata(), s)
    np.testing.assert_allclose(d_line.get_ydata(), s * (1 - s))  # sigma' = sigma (1 - sigma)
    for ax in fig.axes:
        labels = [ln.get_label() for ln in ax.get_lines()]
        assert "derivative" in labels and f"{ax.get_title()}(x)" in labels


def test_plot_activations_relu_derivative_is_a_step():
    fig = plots.plot_activations(names=("relu",), x=np.array([-2.0, -0.5, 0.5, 2.0]))
    (ax,) = fig.axes
    deriv = next(ln for ln in ax.get_lines() if ln.get_label() == "derivative")
    np.testing.assert_array_equal(deriv.get_ydata(), [0, 0, 1, 1])


def test_plot_activations_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"'swish'.*'leaky_relu'"):
        plots.plot_activations(names=("swish",))


# ----------------------------------------------------------------------------- gradient check


def _report(wrong_b: bool):
    W = np.random.default_rng(0).normal(size=(3, 2))
    b = np.array([0.5, -1.0])
    grads = {"W": 2 * W, "b": 3 * b**2 * (2.0 if wrong_b else 1.0)}
    return check_gradients(lambda: float(np.sum(W**2) + np.sum(b**3)), {"W": W, "b": b}, grads)


def test_plot_gradcheck_draws_a_bar_per_parameter_and_the_tolerance_line():
    report = _report(wrong_b=True)
    ax = plots.plot_gradcheck(report)
    assert isinstance(ax, Axes)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["W", "b"]
    bars = ax.patches
    assert len(bars) == 2
    tops = [bar.get_y() + bar.get_height() for bar in bars]
    expected = [np.log10(max(e.rel_error, 1e-16)) for e in report.entries]
    np.testing.assert_allclose(tops, expected)
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), np.log10(TOLERANCE.rtol))
    assert tops[1] > np.log10(TOLERANCE.rtol) > tops[0]  # the wrong gradient sits above the line


def test_plot_gradcheck_colours_failures_red_and_passes_green():
    ax = plots.plot_gradcheck(_report(wrong_b=True))
    green, red = (bar.get_facecolor() for bar in ax.patches)
    assert green != red
    assert matplotlib.colors.to_rgba("tab:red") == red
    assert "FAILED" in ax.get_title()
    ax = plots.plot_gradcheck(_report(wrong_b=False))
    assert "passed" in ax.get_title()


def test_plot_gradcheck_rejects_an_empty_report():
    from bplib.gradcheck import GradCheckReport

    with pytest.raises(ValueError, match="no entries"):
        plots.plot_gradcheck(GradCheckReport())
