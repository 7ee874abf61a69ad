"""The models that came before backpropagation.

* :class:`McCullochPittsUnit` -- McCulloch and Pitts (1943): a threshold unit on
  binary inputs, ``y = 1 if x . w >= theta else 0``.
* :class:`Perceptron` -- Rosenblatt (1958): a threshold unit that *learns*,
  ``w <- w + lr (y - yhat) x``, ``b <- b + lr (y - yhat)``.
* :class:`Adaline` -- Widrow and Hoff (1960): the LMS ("delta") rule, which
  corrects the *net input* rather than the thresholded output,
  ``w <- w + lr (t - net) x`` with targets ``t`` in {-1, +1}.

Shapes follow the rest of bplib: inputs ``X`` are (N, D), one sample per row;
weights ``w`` are (D,) and the bias ``b`` is a scalar, so ``net = X @ w + b``.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_float_array, checked, require_ndim

__all__ = ["McCullochPittsUnit", "Perceptron", "Adaline"]


def _check_X(X, name: str = "X") -> np.ndarray:
    X = as_float_array(X, name)
    require_ndim(X, 2, name, "(N, D), one sample per row")
    return X


def _check_binary_labels(y, n: int) -> np.ndarray:
    """Labels of shape (n,) in {0, 1}, returned as int64."""
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y has shape {y.shape} but X has {n} rows; expected y of shape ({n},)")
    bad = ~np.isin(y, (0, 1))
    if np.any(bad):
        raise ValueError(f"y must hold labels 0 or 1, got {y[bad][0].item()!r}")
    return y.astype(np.int64)


def _check_features(X: np.ndarray, w: np.ndarray, model: str) -> None:
    if X.shape[1] != w.shape[0]:
        raise ValueError(
            f"X has {X.shape[1]} features but this {model} was fitted on {w.shape[0]}; "
            f"expected X of shape (N, {w.shape[0]})"
        )


def _binary_input(unit: McCullochPittsUnit, x):
    """``x`` of 0/1 with one entry per weight of the unit: shape (D,) or (N, D)."""
    x = np.asarray(x)
    d = unit.weights.shape[0]
    if x.ndim not in (1, 2) or x.shape[-1] != d:
        raise ValueError(
            f"x has shape {x.shape} but the unit has {d} inputs; "
            f"expected shape ({d},) or (N, {d})"
        )
    bad = ~np.isin(x, (0, 1))
    if np.any(bad):
        raise ValueError(
            f"a McCulloch-Pitts unit takes binary inputs (0 or 1), got {x[bad][0].item()!r}"
        )
    return unit, x


def _order(n: int, rng: np.random.Generator | None) -> np.ndarray:
    """The order in which an epoch visits the samples: as given, or shuffled by ``rng``."""
    return np.arange(n) if rng is None else rng.permutation(n)


class McCullochPittsUnit:
    """A McCulloch--Pitts neuron (1943): a fixed threshold unit on binary inputs.

    ``y = 1 if sum_i x_i w_i >= theta else 0``. Nothing is learned: the weights
    and the threshold are chosen by hand. A negative weight is an inhibitory
    input, which is how the unit computes NOT and NAND.

    Parameters
    ----------
    weights : array-like, shape (D,)
        One weight per input; ``+1`` excitatory, ``-1`` inhibitory in the classic examples.
    threshold : float
        ``theta``: the unit fires when the weighted sum reaches it.

    Examples
    --------
    AND is ``McCullochPittsUnit([1, 1], 2)``, OR is ``McCullochPittsUnit([1, 1], 1)``,
    NOT is ``McCullochPittsUnit([-1], 0)`` and NAND is ``McCullochPittsUnit([-1, -1], -1)``.
    """

    def __init__(self, weights, threshold: float) -> None:
        w = as_float_array(weights, "weights")
        require_ndim(w, 1, "weights", "(D,)")
        self.weights = w
        self.threshold = float(threshold)

    @checked(_binary_input)
    def __call__(self, x):
        """Fire (1) or stay silent (0).

        Parameters
        ----------
        x : array-like of 0/1, shape (D,) or (N, D)

        Returns
        -------
        int for one input of shape (D,); ndarray of int, shape (N,), for a batch.
        """
        fired = (x @ self.weights >= self.threshold).astype(np.int64)
        return int(fired) if x.ndim == 1 else fired

    def __repr__(self) -> str:
        return f"McCullochPittsUnit(weights={self.weights.tolist()}, threshold={self.threshold:g})"


class Perceptron:
    """Rosenblatt's perceptron (1958) and its learning rule.

    Prediction: ``yhat = 1 if x . w + b >= 0 else 0``. Learning, one sample at a
    time: ``w <- w + lr (y - yhat) x`` and ``b <- b + lr (y - yhat)``, so the
    weights move only on a mistake. The weights start at zero. Training stops
    after the first epoch with no mistake (``converged = True``), which happens
    in finitely many steps if and only if the data are linearly separable
    (Block, 1962; Novikoff, 1962); on XOR it runs for ``max_epochs`` and never
    converges.

    Parameters
    ----------
    lr : float
        Learning rate.
    max_epochs : int
        Most passes over the data.
    rng : int, numpy.random.Generator or None
        If given, every epoch visits the samples in a fresh random order drawn
        from it; if None, in the order given.

    Attributes
    ----------
    w : ndarray, shape (D,)
    b : float
    converged : bool
        Whether an epoch ended with zero mistakes.
    mistakes_per_epoch : list of int
        The number of updates made in each epoch.
    epochs_run : int
    """

    def __init__(self, lr: float = 1.0, max_epochs: int = 100, rng=None) -> None:
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if int(max_epochs) < 1:
            raise ValueError(f"max_epochs must be at least 1, got {max_epochs}")
        self.lr = float(lr)
        self.max_epochs = int(max_epochs)
        self.rng = rng

    def net_input(self, X) -> np.ndarray:
        """``X @ w + b``, shape (N,), for ``X`` of shape (N, D)."""
        X = _check_X(X)
        _check_features(X, self.w, "perceptron")
        return X @ self.w + self.b

    def predict(self, X) -> np.ndarray:
        """Class labels in {0, 1}, shape (N,): ``1 if x . w + b >= 0``."""
        return (self.net_input(X) >= 0).astype(np.int64)

    def fit(self, X, y) -> Perceptron:
        """Apply the perceptron rule until an epoch makes no mistake or ``max_epochs`` pass.

        Parameters
        ----------
        X : array-like, shape (N, D)
        y : array-like of 0/1, shape (N,)

        Returns
        -------
        self
        """
        X = _check_X(X)
        y = _check_binary_labels(y, X.shape[0])
        rng = None if self.rng is None else np.random.default_rng(self.rng)
        self.w = np.zeros(X.shape[1])
        self.b = 0.0
        self.mistakes_per_epoch = []
        self.converged = False
        for _ in range(self.max_epochs):
            mistakes = self._epoch(X, y, _order(len(y), rng))
            self.mistakes_per_epoch.append(mistakes)
            if mistakes == 0:
                self.converged = True
                break
        self.epochs_run = len(self.mistakes_per_epoch)
        return self

    def _epoch(self, X: np.ndarray, y: np.ndarray, order: np.ndarray) -> int:
        mistakes = 0
        for i in order:
            yhat = int(X[i] @ self.w + self.b >= 0)
            if yhat != y[i]:
                self.w += self.lr * (y[i] - yhat) * X[i]
                self.b += self.lr * (y[i] - yhat)
                mistakes += 1
        return mistakes


class Adaline:
    """ADALINE, the adaptive linear neuron of Widrow and Hoff (1960), trained by LMS.

    The targets are ``t = 2 y - 1`` in {-1, +1}. For each sample in turn the
    Widrow--Hoff (least mean squares, "delta") rule moves the weights against
    the gradient of ``(t - net)**2 / 2`` where ``net = x . w + b``::

        w <- w + lr (t - net) x,    b <- b + lr (t - net).

    Unlike the perceptron it corrects the linear output, so it updates on every
    sample, not only on mistakes, and it settles even when the classes overlap.
    The weights start at zero. After each epoch the mean squared error
    ``mean((t - net)**2)`` over the training set is recorded; training stops
    early, with ``converged = True``, once it changes by less than ``tol`` from
    one epoch to the next.

    Parameters
    ----------
    lr : float
        Learning rate. Too large a rate makes LMS diverge (``FloatingPointError``);
        standardised inputs and ``lr`` around 0.01 are safe.
    epochs : int
        Most passes over the data.
    rng : int, numpy.random.Generator or None
        If given, each epoch visits the samples in a random order drawn from it;
        if None, in the order given.
    tol : float
        Convergence threshold on ``|mse[k] - mse[k-1]|``.

    Attributes
    ----------
    w : ndarray, shape (D,)
    b : float
    mse_per_epoch : list of float
    converged : bool
    epochs_run : int
    """

    def __init__(self, lr: float = 0.01, epochs: int = 50, rng=None, tol: float = 1e-6) -> None:
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if int(epochs) < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}")
        self.lr = float(lr)
        self.epochs = int(epochs)
        self.rng = rng
        self.tol = float(tol)

    def net_input(self, X) -> np.ndarray:
        """The linear output ``net = X @ w + b``, shape (N,), for ``X`` of shape (N, D)."""
        X = _check_X(X)
        _check_features(X, self.w, "Adaline")
        return X @ self.w + self.b

    def predict(self, X) -> np.ndarray:
        """Class labels in {0, 1}, shape (N,): ``1 if net >= 0``."""
        return (self.net_input(X) >= 0).astype(np.int64)

    def fit(self, X, y) -> Adaline:
        """Run the Widrow--Hoff rule for up to ``epochs`` passes.

        Parameters
        ----------
        X : array-like, shape (N, D)
        y : array-like of 0/1, shape (N,); mapped to targets ``t = 2 y - 1``

        Returns
        -------
        self
        """
        X = _check_X(X)
        t = 2.0 * _check_binary_labels(y, X.shape[0]) - 1.0
        rng = None if self.rng is None else np.random.default_rng(self.rng)
        self.w = np.zeros(X.shape[1])
        self.b = 0.0
        self.mse_per_epoch = []
        self.converged = False
        for epoch in range(1, self.epochs + 1):
            mse = self._epoch(X, t, _order(len(t), rng))
            if not np.isfinite(mse):
                raise FloatingPointError(
                    f"ADALINE diverged in epoch {epoch}: the mean squared error became {mse}. "
                    f"lr={self.lr} is too large for these inputs; lower it or standardise X."
                )
            self.mse_per_epoch.append(mse)
            if epoch > 1 and abs(self.mse_per_epoch[-2] - mse) < self.tol:
                self.converged = True
                break
        self.epochs_run = len(self.mse_per_epoch)
        return self

    def _epoch(self, X: np.ndarray, t: np.ndarray, order: np.ndarray) -> float:
        with np.errstate(over="ignore", invalid="ignore"):
            for i in order:
                err = t[i] - (X[i] @ self.w + self.b)
                self.w += self.lr * err * X[i]
                self.b += self.lr * err
            return float(np.mean((t - (X @ self.w + self.b)) ** 2))
