"""Plotting helpers for the chapters.

matplotlib is imported inside each function, so ``import bplib`` (and even
``import bplib.plots``) never loads it. Each function draws into a new
figure, or into the ``ax`` it is given, and returns the Axes or Figure;
none calls ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from . import functional as F
from .gradcheck import TOLERANCE, GradCheckReport

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_decision_boundary", "plot_history", "plot_activations", "plot_gradcheck"]


def _new_axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


# ----------------------------------------------------------------------------- decision boundary


def _grid(X: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``resolution x resolution`` grid covering ``X`` with a 10 % margin."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.1 * np.maximum(hi - lo, 1e-3)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    return np.meshgrid(xs, ys)


def _as_surface(Z, k: int) -> tuple[np.ndarray, bool]:
    """Turn ``predict``'s output into one value per grid point; say if it is a probability."""
    Z = np.asarray(Z)
    if Z.ndim == 2 and Z.shape[0] == k and Z.shape[1] > 1:
        return np.argmax(Z, axis=1), False
    if Z.ndim == 2 and Z.shape == (k, 1):
        Z = Z[:, 0]
    if Z.shape != (k,):
        raise ValueError(
            f"predict returned shape {Z.shape} for {k} points; expected labels or "
            f"probabilities of shape ({k},), ({k}, 1) or ({k}, C)"
        )
    if np.issubdtype(Z.dtype, np.integer) or np.all(Z == np.round(Z)):
        return Z, False
    if Z.min() < 0 or Z.max() > 1:
        raise ValueError(
            f"predict returned values in [{Z.min():.3g}, {Z.max():.3g}] that are neither "
            "integer labels nor probabilities in [0, 1]; return labels or probabilities"
        )
    return Z, True


def _check_points(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X has shape {X.shape}; a decision boundary needs X of shape (N, 2)")
    n = X.shape[0]
    if y.shape != (n,):
        raise ValueError(f"y has shape {y.shape} but X has {n} rows; expected y of shape ({n},)")
    return X, y


_POINTS = dict(edgecolors="k", linewidths=0.5, s=20)


def _draw_label_regions(ax, xx, yy, Z: np.ndarray, X: np.ndarray, y: np.ndarray) -> None:
    """Regions and points coloured alike: class ``k`` gets colour ``k`` of tab10."""
    from matplotlib.colors import ListedColormap

    if min(Z.min(), y.min()) < 0:
        raise ValueError("class labels must be non-negative integers to be coloured")
    n = int(max(Z.max(), y.max())) + 1
    cmap = ListedColormap([f"C{k % 10}" for k in range(n)])
    ax.contourf(xx, yy, Z, levels=np.arange(n + 1) - 0.5, cmap=cmap, alpha=0.3)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap=cmap, vmin=-0.5, vmax=n - 0.5, **_POINTS)


def plot_decision_boundary(
    predict: Callable[[np.ndarray], np.ndarray], X, y, ax: Axes | None = None,
    resolution: int = 200,
) -> Axes:
    """Colour the plane by a classifier's prediction and scatter the data on top.

    Parameters
    ----------
    predict : callable
        Maps points of shape (K, 2) to class labels (K,), a probability of
        class 1 (K,) or (K, 1), or class probabilities (K, C) (the argmax is drawn).
    X : array-like, shape (N, 2)
    y : array-like, shape (N,)
        Class labels, used to colour the points.
    ax : matplotlib Axes, optional
    resolution : int
        Grid points per axis.

    Returns
    -------
    matplotlib.axes.Axes
        With one filled contour set (the regions; for probabilities also a
        black line at 0.5) and one scatter collection (the data).
    """
    X, y = _check_points(X, y)
    xx, yy = _grid(X, int(resolution))
    Z, is_prob = _as_surface(predict(np.column_stack([xx.ravel(), yy.ravel()])), xx.size)
    Z = Z.reshape(xx.shape)
    ax = _new_axes(ax)
    if is_prob:
        ax.contourf(xx, yy, Z, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
        ax.contour(xx, yy, Z, levels=[0.5], colors="k", linewidths=1)
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r", vmin=0, vmax=1, **_POINTS)
    else:
        _draw_label_regions(ax, xx, yy, Z.astype(np.int64), X, y.astype(np.int64))
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    return ax


# ----------------------------------------------------------------------------- history


def _history_dict(history) -> Mapping[str, Sequence[float]]:
    hist = getattr(history, "history", history)
    if not isinstance(hist, Mapping):
        raise TypeError(
            "history must be a bplib.train.History (or Keras History) or a dict of lists, "
            f"got {type(history).__name__}"
        )
    return hist


def plot_history(
    history, metrics: Sequence[str] = ("loss", "accuracy"), ax=None
) -> Figure:
    """Training curves per epoch: one panel per metric, training and validation together.

    Parameters
    ----------
    history : bplib.train.History, keras History, or dict
        Anything with a ``.history`` dict of per-epoch lists, or that dict itself
        (keys such as ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``).
    metrics : sequence of str
        The metrics to draw; those missing from ``history`` are skipped.
    ax : matplotlib Axes or sequence of Axes, optional
        One Axes per metric drawn.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per metric, each with a ``train`` line and, when ``val_<metric>``
        is present, a ``validation`` line.
    """
    hist = _history_dict(history)
    present = [m for m in metrics if m in hist]
    if not present:
        raise ValueError(f"none of the metrics {tuple(metrics)} is in the history; "
                         f"it has {sorted(hist)}")
    axes = _history_axes(ax, present)
    for a, metric in zip(axes, present, strict=True):
        _plot_metric(a, hist, metric)
    return axes[0].figure


def _history_axes(ax, present: list[str]) -> list:
    if ax is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, len(present), figsize=(4.5 * len(present), 3.5), squeeze=False)
        return list(axes[0])
    axes = list(ax) if isinstance(ax, (Sequence, np.ndarray)) else [ax]
    if len(axes) != len(present):
        raise ValueError(
            f"got {len(axes)} Axes for {len(present)} metrics {tuple(present)}; "
            f"pass one Axes per metric or choose metrics=..."
        )
    return axes


def _plot_metric(ax, hist: Mapping[str, Sequence[float]], metric: str) -> None:
    train = np.asarray(hist[metric], dtype=np.float64)
    ax.plot(np.arange(1, len(train) + 1), train, marker=".", label="train")
    if f"val_{metric}" in hist:
        val = np.asarray(hist[f"val_{metric}"], dtype=np.float64)
        ax.plot(np.arange(1, len(val) + 1), val, marker=".", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.legend()


# ----------------------------------------------------------------------------- activations


def _activation(name: str) -> tuple[Callable, Callable]:
    """``(forward, backward)`` for an activation name, as in :mod:`bplib.functional`."""
    pairs = {
        "sigmoid": (F.sigmoid_forward, F.sigmoid_backward),
        "tanh": (F.tanh_forward, F.tanh_backward),
        "relu": (F.relu_forward, F.relu_backward),
        "leaky_relu": (lambda x: F.leaky_relu_forward(x, 0.1), F.leaky_relu_backward),
    }
    if name not in pairs:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(pairs)}")
    return pairs[name]


def plot_activations(
    names: Sequence[str] = ("sigmoid", "tanh", "relu", "leaky_relu"), x=None
) -> Figure:
    """Each activation ``f`` and its derivative ``f'`` on ``[-5, 5]``, one panel each.

    The derivative is what backpropagation uses: ``f'(x) = f_backward(1, cache)``,
    the backward function of :mod:`bplib.functional` applied to an upstream
    gradient of ones. The leaky ReLU is drawn with slope ``alpha = 0.1`` so that
    the leak is visible.

    Parameters
    ----------
    names : sequence of {"sigmoid", "tanh", "relu", "leaky_relu"}
    x : array-like, shape (K,), optional
        Where to evaluate; 401 points on ``[-5, 5]`` by default.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per name, each with two lines: ``f(x)`` and ``f'(x)``.
    """
    import matplotlib.pyplot as plt

    pairs = [(name, *_activation(name)) for name in names]
    x = np.linspace(-5, 5, 401) if x is None else np.asarray(x, dtype=np.float64)
    fig, axes = plt.subplots(1, len(pairs), figsize=(3.2 * len(pairs), 3), squeeze=False)
    for ax, (name, forward, backward) in zip(axes[0], pairs, strict=True):
        out, cache = forward(x)
        ax.plot(x, out, label=f"{name}(x)")
        ax.plot(x, backward(np.ones_like(out), cache), "--", label="derivative")
        ax.axhline(0, color="0.8", linewidth=0.8, zorder=0)
        ax.set_title(name)
        ax.set_xlabel("x")
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- gradient check


def plot_gradcheck(report: GradCheckReport, ax: Axes | None = None) -> Axes:
    """Bar chart of each parameter's worst relative error, on a log10 scale.

    One bar per entry of the report, rising from the bottom of the plot to
    ``log10(rel_error)`` (errors of exactly 0 are drawn at 1e-16): the taller,
    the worse. Bars are green if the entry passed and red if not,
    with a dashed line at ``log10(TOLERANCE.rtol)``. The pass/fail colour comes
    from the report, whose test also has an absolute part (``TOLERANCE.atol``),
    so a tiny gradient may pass above the line.

    Parameters
    ----------
    report : bplib.gradcheck.GradCheckReport
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        With one bar patch per parameter and one horizontal tolerance line.
    """
    entries = getattr(report, "entries", None)
    if entries is None:
        raise TypeError(f"report must be a GradCheckReport, got {type(report).__name__}")
    if not entries:
        raise ValueError("the gradient-check report has no entries: nothing to plot")
    names = [e.name for e in entries]
    logs = np.log10([max(e.rel_error, 1e-16) for e in entries])
    line = np.log10(TOLERANCE.rtol)
    floor = np.floor(min(logs.min(), line)) - 1
    colours = ["tab:green" if e.passed else "tab:red" for e in entries]
    ax = _new_axes(ax)
    ax.bar(names, logs - floor, bottom=floor, color=colours)
    ax.axhline(line, color="k", linestyle="--", label=f"tolerance {TOLERANCE.rtol:g}")
    ax.set_ylim(floor, max(0.0, logs.max()) + 0.5)
    ax.set_ylabel("log10 relative error")
    ax.set_title("gradient check " + ("passed" if report.passed else "FAILED"))
    ax.legend()
    return ax
