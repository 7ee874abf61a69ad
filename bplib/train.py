"""The training loop: mini-batches, an optimiser, and a per-epoch history.

:func:`fit` works with any model that has ``forward_backward(x, y) -> (loss, out)``,
``gradients(trainable_only)``, ``parameters(trainable_only)``, ``output_to_classes``,
``loss_value``, ``is_classifier``, ``loss_name`` and ``dtype``: in practice a
:class:`bplib.model.Sequential`.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ._validate import as_float_array
from .optim import SGD, Optimizer

__all__ = ["History", "EarlyStopping", "fit", "evaluate", "predict"]


@dataclass
class History:
    """What :func:`fit` measured, like Keras's ``History``.

    Attributes
    ----------
    history : dict[str, list[float]]
        One value per epoch for ``loss``, ``accuracy`` (classification),
        ``val_loss`` and ``val_accuracy`` (with validation data). ``loss`` and
        ``accuracy`` are averaged over the epoch's batches, each measured just
        before its update (as Keras reports them).
    epochs : list[int]
        The epoch numbers, counted from 1.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epochs: list[int] = field(default_factory=list)

    def record(self, epoch: int, logs: dict[str, float]) -> None:
        self.epochs.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items() if v)
        return f"History(epochs={len(self.epochs)}, last: {last})"


# ---------------------------------------------------------------------- early stopping


class EarlyStopping:
    """Stop :func:`fit` when ``monitor`` has stopped improving (Keras's callback).

    After each epoch, the value ``logs[monitor]`` counts as an improvement when it
    beats the best so far by more than ``min_delta``; after ``patience`` epochs in a
    row without one, training stops. With ``restore_best_weights``, the model ends
    with the weights of its best epoch (whether or not training stopped early).

    Parameters
    ----------
    monitor : str
        A key of the epoch's logs: ``"val_loss"`` (needs ``validation_data``),
        ``"val_accuracy"``, ``"loss"``, ``"accuracy"``.
    min_delta : float
        The smallest change that counts as an improvement.
    patience : int
        Epochs without improvement before training stops.
    mode : "auto", "min" or "max"
        Whether smaller or larger is better; "auto" is "max" for accuracies.
    restore_best_weights : bool

    Attributes
    ----------
    best : float
        The best value of ``monitor`` seen.
    best_epoch : int
        Its epoch, counted from 1 like :attr:`History.epochs` (Keras counts from 0).
    stopped_epoch : int
        The epoch at which training stopped, 0 if it ran every epoch.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 mode: str = "auto", restore_best_weights: bool = False) -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if not isinstance(patience, (int, np.integer)) or patience < 0:
            raise ValueError(f"patience must be a non-negative integer, got {patience!r}")
        if isinstance(min_delta, bool) or not (isinstance(min_delta, numbers.Real)
                                               and min_delta >= 0):
            raise ValueError(f"min_delta must be a number >= 0, got {min_delta!r}")
        self.monitor, self.min_delta, self.patience = monitor, float(min_delta), int(patience)
        self.restore_best_weights = restore_best_weights
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.sign = 1.0 if mode == "min" else -1.0

    def on_train_begin(self, model) -> None:
        self.model = model
        self.best, self.best_epoch, self.stopped_epoch = None, 0, 0
        self.best_weights, self.wait = None, 0

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        """Record the epoch; return True when training should stop."""
        if self.monitor not in logs:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, but fit logs only "
                f"{', '.join(logs)}; pass validation_data=(X_val, y_val) to fit, or "
                f"monitor one of those"
            )
        current = logs[self.monitor]
        if self.best is None or self._improves(current):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = [w.copy() for w in self.model.get_weights()]
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def _improves(self, current: float) -> bool:
        # Keras's arithmetic, so that ties at exactly min_delta go the same way.
        if self.sign > 0:
            return current + self.min_delta < self.best
        return current - self.min_delta > self.best

    def on_train_end(self) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def _check_callbacks(callbacks) -> list:
    callbacks = [] if callbacks is None else list(callbacks)
    for cb in callbacks:
        missing = [m for m in ("on_train_begin", "on_epoch_end", "on_train_end")
                   if not callable(getattr(cb, m, None))]
        if missing:
            raise TypeError(
                f"callbacks must have on_train_begin, on_epoch_end and on_train_end "
                f"(like bplib.train.EarlyStopping); {cb!r} lacks {', '.join(missing)}"
            )
    return callbacks


# ---------------------------------------------------------------------- checks


def _first_bad(a: np.ndarray) -> tuple[int, int]:
    bad = ~np.isfinite(a)
    count = int(bad.sum())
    first = int(np.argmax(bad.reshape(a.shape[0], -1).any(axis=1))) if count else -1
    return count, first


def check_inputs(model, X, y, names: tuple[str, str] = ("X", "y")) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ``X`` (N, D) and ``y`` for ``model``; raise ValueError on bad input.

    ``X`` becomes an array of the model's dtype; ``y`` holds integer labels (N,)
    for softmax cross-entropy and the model's dtype otherwise; for ``mse`` a 1-D
    ``y`` becomes a column (N, 1).
    """
    xn, yn = names
    X = as_float_array(X, xn)
    if X.ndim != 2:
        hint = f"; for one feature use {xn}.reshape(-1, 1)" if X.ndim == 1 else ""
        raise ValueError(f"{xn} must be 2-D with shape (N, D), got shape {X.shape}{hint}")
    if X.shape[0] == 0:
        raise ValueError(f"{xn} has no rows (shape {X.shape}); there is nothing to learn from")
    X = X.astype(model.dtype, copy=False)
    y = as_float_array(y, yn) if not _is_int(y) else np.asarray(y)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{xn} has {X.shape[0]} rows (shape {X.shape}) but {yn} has shape {y.shape}; "
            f"{xn} and {yn} need one row per example"
        )
    for arr, name in ((X, xn), (y, yn)):
        count, first = _first_bad(arr) if arr.dtype.kind == "f" else (0, -1)
        if count:
            raise ValueError(
                f"{name} contains {count} non-finite value(s) (NaN or inf), the first in row "
                f"{first}; remove or fill them in before training"
            )
    if model.loss_name == "softmax_cross_entropy":
        if y.dtype.kind == "f" and np.all(y == np.round(y)):
            y = y.astype(np.int64)
    else:
        y = y.astype(model.dtype, copy=False)
        if model.loss_name == "mse" and y.ndim == 1:
            y = y.reshape(-1, 1)
    return X, y


def _is_int(y) -> bool:
    return isinstance(y, np.ndarray) and y.dtype.kind in "iub"


def _positive_int(value, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------- training


def _divergence_error(loss: float, epoch: int, epochs: int, batch: int, batches: int,
                      optimizer: Optimizer) -> FloatingPointError:
    return FloatingPointError(
        f"the training loss became {loss} at epoch {epoch} of {epochs}, batch {batch} of "
        f"{batches} (both counted from 1): the weights have diverged. Try a smaller learning "
        f"rate than lr={optimizer.lr}, and check that the inputs are standardised."
    )


def _batches(n: int, batch_size: int, order: np.ndarray | None):
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        yield slice(start, stop) if order is None else order[start:stop]


def fit(
    model,
    X,
    y,
    optimizer: Optimizer | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = 0,
    validation_data: tuple | None = None,
    verbose: bool | None = None,
    callbacks: list | None = None,
) -> History:
    """Train ``model`` by mini-batch gradient descent; returns a :class:`History`.

    Each epoch visits every example once, in batches of ``batch_size`` (the last
    may be smaller), in an order drawn from ``seed`` when ``shuffle`` is true.
    Each batch: forward, loss, backward, ``optimizer.step`` on the trainable
    parameters (layers with ``trainable=False`` are not updated).

    Parameters
    ----------
    model : Sequential
    X : ndarray, shape (N, D)
    y : ndarray, shape (N,) integer labels for softmax cross-entropy; 0/1 targets
        (N,) or (N, 1) for binary cross-entropy; targets (N,) or (N, K) for mse
    optimizer : Optimizer, default ``SGD(lr=0.01)``
    validation_data : tuple ``(X_val, y_val)``, evaluated after every epoch
    verbose : bool or None
        Print one line per epoch; None prints only when stdout is a terminal.
    callbacks : list, optional
        Objects such as :class:`EarlyStopping`, told when training begins, after every
        epoch (``on_epoch_end(epoch, logs)``; True stops training) and when it ends.

    Raises
    ------
    ValueError
        Non-finite values in ``X`` or ``y``, or shapes that do not match.
    FloatingPointError
        The loss became NaN or infinite (the message names the epoch and batch).
    """
    X, y = check_inputs(model, X, y)
    val = check_inputs(model, *validation_data, names=("X_val", "y_val")) if validation_data \
        else None
    epochs = _positive_int(epochs, "epochs")
    batch_size = _positive_int(batch_size, "batch_size")
    callbacks = _check_callbacks(callbacks)
    optimizer = SGD(lr=0.01) if optimizer is None else optimizer
    params = model.parameters(trainable_only=True)
    if not params:
        raise ValueError("the model has no trainable parameters: every layer has trainable=False")
    if verbose is None:
        verbose = bool(getattr(sys.stdout, "isatty", lambda: False)())
    rng = np.random.default_rng(seed)
    history = History()
    for cb in callbacks:
        cb.on_train_begin(model)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = rng.permutation(X.shape[0]) if shuffle else None
        # A diverging run overflows before the loss check below can speak; silence the
        # floating-point warnings so that the reader gets that check's explanation.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            logs = _run_epoch(model, optimizer, params, X, y, batch_size, order, epoch, epochs)
        if val is not None:
            logs.update({f"val_{k}": v for k, v in evaluate(model, *val).items()})
        history.record(epoch, logs)
        if verbose:
            _print_progress(epoch, epochs, logs, time.perf_counter() - start)
        if any([cb.on_epoch_end(epoch, logs) for cb in callbacks]):  # a list: tell them all
            break
    for cb in callbacks:
        cb.on_train_end()
    return history


def _run_epoch(model, optimizer, params, X, y, batch_size, order, epoch, epochs):
    n = X.shape[0]
    batches = -(-n // batch_size)
    total_loss, correct = 0.0, 0
    for b, idx in enumerate(_batches(n, batch_size, order), 1):
        xb, yb = X[idx], y[idx]
        loss, out = model.forward_backward(xb, yb)
        if not math.isfinite(loss):
            raise _divergence_error(loss, epoch, epochs, b, batches, optimizer)
        optimizer.step(params, model.gradients(trainable_only=True))
        total_loss += loss * xb.shape[0]
        if model.is_classifier:
            correct += _count_correct(model, out, yb)
    logs = {"loss": total_loss / n}
    if model.is_classifier:
        logs["accuracy"] = correct / n
    return logs


def _count_correct(model, out: np.ndarray, y: np.ndarray) -> int:
    return int(np.count_nonzero(model.output_to_classes(out) == y.reshape(-1)))


def _print_progress(epoch: int, epochs: int, logs: dict[str, float], seconds: float) -> None:
    width = len(str(epochs))
    parts = "  ".join(f"{k} {v:.4f}" for k, v in logs.items())
    print(f"epoch {epoch:>{width}}/{epochs}  {parts}  ({seconds:.2f} s)", flush=True)


# ---------------------------------------------------------------------- inference


def evaluate(model, X, y, batch_size: int = 1024) -> dict[str, float]:
    """Mean loss over ``(X, y)`` and, for classification, the accuracy.

    Returns ``{"loss": ..., "accuracy": ...}``; the data go through the model in
    batches of ``batch_size`` rows, which changes nothing but the memory used.
    """
    X, y = check_inputs(model, X, y)
    batch_size = _positive_int(batch_size, "batch_size")
    n = X.shape[0]
    total_loss, correct = 0.0, 0
    for idx in _batches(n, batch_size, None):
        out = model.forward(X[idx])
        total_loss += model.loss_value(out, y[idx]) * out.shape[0]
        if model.is_classifier:
            correct += _count_correct(model, out, y[idx])
    result = {"loss": total_loss / n}
    if model.is_classifier:
        result["accuracy"] = correct / n
    return result


def predict(model, X) -> np.ndarray:
    """The model's predictions: probabilities for the cross-entropy losses, outputs for mse."""
    return model.predict(X)
