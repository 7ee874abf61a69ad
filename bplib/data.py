"""Datasets for the course: truth tables, seeded toy problems, and scikit-learn's bundled sets.

Every generator takes ``rng``, an int seed or a :class:`numpy.random.Generator`,
and returns ``(X, y)`` with ``X`` of shape (N, 2) float64 and ``y`` of shape
(N,) int64, shuffled. The loaders read the data that ships inside
scikit-learn (no network), split it, and standardise it with the training
set's statistics. scikit-learn is imported only when a loader is called.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from ._validate import as_float_array, require_ndim

__all__ = [
    "truth_table",
    "make_moons",
    "make_circles",
    "make_spirals",
    "Split",
    "SplitMeta",
    "load_digits",
    "load_breast_cancer",
    "load_diabetes",
    "train_test_split",
    "standardise",
    "one_hot",
    "minibatches",
]

# ----------------------------------------------------------------------------- truth tables

_TRUTH_TABLES = {
    "and": (0, 0, 0, 1),
    "or": (0, 1, 1, 1),
    "nand": (1, 1, 1, 0),
    "xor": (0, 1, 1, 0),
}


def truth_table(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The truth table of a two-input Boolean function.

    Parameters
    ----------
    name : {"and", "or", "nand", "xor"} (any case)

    Returns
    -------
    X : ndarray, shape (4, 2), float64
        The rows ``(0, 0), (0, 1), (1, 0), (1, 1)``.
    y : ndarray, shape (4,), int64
    """
    key = str(name).lower()
    if key not in _TRUTH_TABLES:
        raise ValueError(f"unknown truth table {name!r}; choose one of {sorted(_TRUTH_TABLES)}")
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    return X, np.array(_TRUTH_TABLES[key], dtype=np.int64)


# ----------------------------------------------------------------------------- toy problems


def _generator(rng) -> np.random.Generator:
    if isinstance(rng, (bool, float)):
        raise TypeError(f"rng must be an int seed or a numpy Generator, got {rng!r}")
    return np.random.default_rng(rng)


def _shuffled(X: np.ndarray, y: np.ndarray, gen: np.random.Generator):
    order = gen.permutation(len(y))
    return X[order], y[order]


def _check_count(n: int, name: str, minimum: int) -> int:
    if int(n) != n or n < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {n!r}")
    return int(n)


def _two_noisy_classes(X0: np.ndarray, X1: np.ndarray, noise: float, gen):
    """Points ``X0`` labelled 0 and ``X1`` labelled 1, with Gaussian noise, shuffled."""
    X = np.concatenate([X0, X1])
    y = np.repeat(np.array([0, 1], dtype=np.int64), [len(X0), len(X1)])
    X = X + gen.normal(scale=noise, size=X.shape)
    return _shuffled(X, y, gen)


def make_moons(n: int = 200, noise: float = 0.1, rng=0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles.

    Class 0 lies on ``(cos a, sin a)`` and class 1 on ``(1 - cos a, 1/2 - sin a)``
    for ``a`` in ``[0, pi]``; Gaussian noise of standard deviation ``noise`` is
    added to every coordinate.

    Returns
    -------
    X : ndarray, shape (n, 2)
    y : ndarray, shape (n,); ``n // 2`` zeros and ``n - n // 2`` ones
    """
    n = _check_count(n, "n", 2)
    gen = _generator(rng)
    n0 = n // 2
    a0 = np.linspace(0, np.pi, n0)
    a1 = np.linspace(0, np.pi, n - n0)
    return _two_noisy_classes(np.column_stack([np.cos(a0), np.sin(a0)]),
                              np.column_stack([1 - np.cos(a1), 0.5 - np.sin(a1)]), noise, gen)


def make_circles(
    n: int = 200, noise: float = 0.05, factor: float = 0.5, rng=0
) -> tuple[np.ndarray, np.ndarray]:
    """A circle of radius ``factor`` (class 1) inside the unit circle (class 0).

    Returns
    -------
    X : ndarray, shape (n, 2)
    y : ndarray, shape (n,); ``n // 2`` zeros (outer) and ``n - n // 2`` ones (inner)
    """
    n = _check_count(n, "n", 2)
    if not 0 < factor < 1:
        raise ValueError(f"factor is the inner radius over the outer one and must lie in (0, 1), "
                         f"got {factor}")
    gen = _generator(rng)
    n0 = n // 2
    a0 = np.linspace(0, 2 * np.pi, n0, endpoint=False)
    a1 = np.linspace(0, 2 * np.pi, n - n0, endpoint=False)
    return _two_noisy_classes(np.column_stack([np.cos(a0), np.sin(a0)]),
                              factor * np.column_stack([np.cos(a1), np.sin(a1)]), noise, gen)


def make_spirals(
    n_per_class: int = 100, classes: int = 3, noise: float = 0.2, rng=0
) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class (the cs231n toy problem).

    Arm ``k`` has radius ``r = linspace(0, 1)`` and angle
    ``theta = 4 k + 4 r + noise * N(0, 1)``; its points are ``r (sin theta, cos theta)``.

    Returns
    -------
    X : ndarray, shape (n_per_class * classes, 2)
    y : ndarray, shape (n_per_class * classes,); ``n_per_class`` of each class
    """
    n_per_class = _check_count(n_per_class, "n_per_class", 1)
    classes = _check_count(classes, "classes", 2)
    gen = _generator(rng)
    r = np.linspace(0.0, 1.0, n_per_class)
    arms = []
    for k in range(classes):
        theta = 4.0 * k + 4.0 * r + gen.normal(scale=noise, size=n_per_class)
        arms.append(np.column_stack([r * np.sin(theta), r * np.cos(theta)]))
    y = np.repeat(np.arange(classes, dtype=np.int64), n_per_class)
    return _shuffled(np.concatenate(arms), y, gen)


# ----------------------------------------------------------------------------- splitting


def _check_xy(X: np.ndarray, y: np.ndarray) -> None:
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X has {X.shape[0]} samples (shape {X.shape}) but y has {y.shape[0]} "
            f"(shape {y.shape}); they must have the same length"
        )


def _n_test(n: int, test_size: float) -> int:
    if not 0 < test_size < 1:
        raise ValueError(f"test_size is the fraction of samples held out and must lie in (0, 1), "
                         f"got {test_size}")
    return int(round(test_size * n))


def _stratified_test_indices(y: np.ndarray, test_size: float, gen) -> np.ndarray:
    if y.ndim != 1:
        raise ValueError(f"stratify=True needs class labels of shape (N,), got y of shape "
                         f"{y.shape}; pass stratify=False or integer labels")
    classes, counts = np.unique(y, return_counts=True)
    if np.any(counts < 2):
        c = classes[np.argmin(counts)]
        raise ValueError(
            f"stratify=True needs at least 2 samples of every class, but class {c!r} has "
            f"{counts.min()}; for regression targets pass stratify=False"
        )
    picked = []
    for c, count in zip(classes, counts, strict=True):
        members = gen.permutation(np.flatnonzero(y == c))
        k = min(max(_n_test(count, test_size), 1), count - 1)
        picked.append(members[:k])
    return np.concatenate(picked)


def train_test_split(X, y, test_size: float = 0.25, seed: int = 0, stratify: bool = True):
    """Hold out a random fraction ``test_size`` of the samples.

    With ``stratify=True`` each class is split separately, so both parts keep
    the class proportions of ``y``; use ``stratify=False`` for regression.

    Parameters
    ----------
    X : array-like, shape (N, ...)
    y : array-like, shape (N,) or (N, K)
    test_size : float in (0, 1)
    seed : int or numpy.random.Generator

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarrays, each shuffled
    """
    X, y = np.asarray(X), np.asarray(y)
    _check_xy(X, y)
    gen = _generator(seed)
    n = X.shape[0]
    if stratify:
        test = _stratified_test_indices(y, test_size, gen)
    else:
        test = gen.permutation(n)[: _n_test(n, test_size)]
    is_test = np.zeros(n, dtype=bool)
    is_test[test] = True
    train = gen.permutation(np.flatnonzero(~is_test))
    test = gen.permutation(np.flatnonzero(is_test))
    return X[train], X[test], y[train], y[test]


def standardise(X_train, X_test=None):
    """Scale every feature to mean 0 and standard deviation 1 *on the training set*.

    ``X' = (X - mu) / sigma`` with ``mu`` and ``sigma`` (shape (D,)) computed on
    ``X_train`` only and applied to both sets, so nothing about the test set
    leaks into training. A constant feature (``sigma == 0``, such as the blank
    border pixels of the digits) is only centred: its ``sigma`` is taken to be 1.

    Parameters
    ----------
    X_train : array-like, shape (N, D)
    X_test : array-like, shape (M, D), optional

    Returns
    -------
    X_train_std : ndarray, shape (N, D)
    X_test_std : ndarray, shape (M, D), or None if ``X_test`` is None
    """
    X_train = as_float_array(X_train, "X_train")
    require_ndim(X_train, 2, "X_train", "(N, D)")
    mu, sigma = _mean_std(X_train)
    if X_test is None:
        return (X_train - mu) / sigma, None
    X_test = as_float_array(X_test, "X_test")
    if X_test.ndim != 2 or X_test.shape[1] != X_train.shape[1]:
        raise ValueError(f"X_test has shape {X_test.shape} but X_train has shape "
                         f"{X_train.shape}; expected X_test of shape (M, {X_train.shape[1]})")
    return (X_train - mu) / sigma, (X_test - mu) / sigma


def _mean_std(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations, with ``sigma = 1`` for constant columns."""
    mu = X.mean(axis=0)
    sigma = X.std(axis=0)
    constant = sigma <= 1e3 * np.finfo(X.dtype).eps * np.maximum(1.0, np.abs(mu))
    return mu, np.where(constant, 1.0, sigma).astype(X.dtype)


# ----------------------------------------------------------------------------- bundled data


class SplitMeta(dict):
    """What a loader knows about its data: a dict whose keys are also attributes.

    Keys: ``feature_names`` (list of str), ``target_names`` (list of str, or
    None for regression), ``target_mean`` and ``target_std`` (floats for a
    standardised regression target, else None): ``y = y_std * target_std + target_mean``.
    """

    def __getattr__(self, key: str):
        try:
            return self[key]
        except KeyError:
            known = sorted(self)
            raise AttributeError(f"Split.meta has no entry {key!r}; it has {known}") from None


class _SplitFields(NamedTuple):
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


class Split(_SplitFields):
    """A train/test split: the NamedTuple ``(X_train, X_test, y_train, y_test)`` plus ``meta``.

    It unpacks as four arrays, ``X_train, X_test, y_train, y_test = split``;
    ``split.meta`` (a :class:`SplitMeta`) holds the feature names and, for a
    regression target, the training mean and std used to standardise it.
    """

    def __new__(cls, X_train, X_test, y_train, y_test, meta=None):
        self = super().__new__(cls, X_train, X_test, y_train, y_test)
        self.meta = SplitMeta(meta or {})
        return self

    def _replace(self, **changes) -> Split:
        fields = {**self._asdict(), **changes}
        return Split(**fields, meta=dict(self.meta))


def _load_classification(loader, test_size: float, seed: int) -> Split:
    bunch = loader()
    X_train, X_test, y_train, y_test = train_test_split(
        bunch.data, bunch.target, test_size=test_size, seed=seed, stratify=True
    )
    X_train, X_test = standardise(X_train, X_test)
    meta = dict(
        feature_names=[str(f) for f in bunch.feature_names],
        target_names=[str(t) for t in bunch.target_names],
        target_mean=None,
        target_std=None,
    )
    return Split(X_train, X_test, y_train.astype(np.int64), y_test.astype(np.int64), meta)


def load_digits(test_size: float = 0.25, seed: int = 0) -> Split:
    """scikit-learn's 8x8 handwritten digits (1797 images, 64 pixels, labels 0..9).

    Split with stratification and standardised with the training statistics;
    pixels that are blank in every training image are centred, not scaled.

    Returns
    -------
    Split
        ``X_train`` (N_train, 64) float64, ``y_train`` (N_train,) int64 in 0..9, likewise for test.
    """
    from sklearn import datasets

    return _load_classification(datasets.load_digits, test_size, seed)


def load_breast_cancer(test_size: float = 0.25, seed: int = 0) -> Split:
    """The Wisconsin diagnostic breast cancer data (569 tumours, 30 features).

    Labels follow scikit-learn: 0 = malignant, 1 = benign (``meta.target_names``).
    Split with stratification and standardised with the training statistics.

    Returns
    -------
    Split
        ``X_train`` (N_train, 30) float64, ``y_train`` (N_train,) int64 in {0, 1};
        likewise for test.
    """
    from sklearn import datasets

    return _load_classification(datasets.load_breast_cancer, test_size, seed)


def load_diabetes(test_size: float = 0.25, seed: int = 0) -> Split:
    """The diabetes regression data (442 patients, 10 features, disease progression after a year).

    Features *and* target are standardised with the training statistics;
    ``meta.target_mean`` and ``meta.target_std`` undo the target's scaling:
    ``y = y_std * target_std + target_mean``.

    Returns
    -------
    Split
        ``X_train`` (N_train, 10), ``y_train`` (N_train,) float64, likewise for test.
    """
    from sklearn import datasets

    bunch = datasets.load_diabetes(scaled=False)
    X_train, X_test, y_train, y_test = train_test_split(
        bunch.data, bunch.target.astype(np.float64), test_size=test_size, seed=seed,
        stratify=False,
    )
    X_train, X_test = standardise(X_train, X_test)
    t_mean, t_std = float(y_train.mean()), float(y_train.std())
    meta = dict(
        feature_names=[str(f) for f in bunch.feature_names],
        target_names=None,
        target_mean=t_mean,
        target_std=t_std,
    )
    return Split(X_train, X_test, (y_train - t_mean) / t_std, (y_test - t_mean) / t_std, meta)


# ----------------------------------------------------------------------------- labels, batches


def one_hot(labels, num_classes: int | None = None) -> np.ndarray:
    """One row per label with a 1 in the label's column.

    Parameters
    ----------
    labels : array-like of int, shape (N,)
    num_classes : int, optional
        ``C``; by default ``max(labels) + 1``.

    Returns
    -------
    ndarray, shape (N, C), float64
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D of shape (N,), got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y))):
            raise TypeError(f"labels must be integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    bad = y[(y < 0) | (y >= num_classes)]
    if bad.size:
        raise ValueError(
            f"label {bad[0]} is out of range for {num_classes} classes; "
            f"labels must lie in 0..{num_classes - 1}"
        )
    out = np.zeros((y.shape[0], num_classes))
    out[np.arange(y.shape[0]), y] = 1.0
    return out


def minibatches(
    X, y, batch_size: int, shuffle: bool = True, rng=None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Iterate over ``(X_batch, y_batch)`` pairs that together cover the data once.

    Every batch has ``batch_size`` rows except possibly the last, which keeps
    the remainder (``N % batch_size`` rows). With ``shuffle=True`` the order is
    a permutation drawn from ``rng`` (an int seed or a Generator: pass the same
    Generator every epoch for a new, reproducible order each time; None draws
    fresh entropy).

    Parameters
    ----------
    X : array-like, shape (N, ...)
    y : array-like, shape (N, ...)
    batch_size : int >= 1

    Yields
    ------
    X_batch : ndarray, shape (B, ...)
    y_batch : ndarray, shape (B, ...)
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(
            f"X and y must have one row per sample, got shapes {X.shape} and {y.shape}"
        )
    _check_xy(X, y)
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    order = _generator(rng).permutation(len(y)) if shuffle else np.arange(len(y))
    return _batches(X, y, order, int(batch_size))


def _batches(X: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int):
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield X[idx], y[idx]
