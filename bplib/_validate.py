"""Input checks shared by bplib's functions: clear messages that name shapes."""

from __future__ import annotations

import numpy as np


def as_float_array(a, name: str) -> np.ndarray:
    """Return ``a`` as a floating ndarray (float32 stays float32, anything else becomes float64)."""
    if isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64):
        return a
    try:
        arr = np.asarray(a)
    except Exception as exc:  # pragma: no cover - numpy rarely fails here
        raise TypeError(f"{name} must be array-like, got {type(a).__name__}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must hold numbers, got an array of dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
    if arr.dtype == np.float32:
        return arr
    return arr.astype(np.float64)


def require_ndim(a: np.ndarray, ndim: int, name: str, layout: str) -> None:
    if a.ndim != ndim:
        raise ValueError(
            f"{name} must be {ndim}-D with shape {layout}, got shape {a.shape}"
        )


def require_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; they must match"
        )


def as_labels(labels, n: int, num_classes: int) -> np.ndarray:
    """Integer class labels of shape (n,) with values in [0, num_classes)."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(
            f"labels must be 1-D of shape (N,) = ({n},) holding class indices, "
            f"got shape {y.shape}"
        )
    if y.shape[0] != n:
        raise ValueError(f"labels has {y.shape[0]} entries but logits has {n} rows")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating):
            raise TypeError(f"labels must be integer class indices, got dtype {y.dtype}")
        whole = np.isfinite(y) & (y == np.round(y))
        if not np.all(whole):
            raise TypeError(
                f"labels must be integer class indices, got {y[~whole][0]} (dtype {y.dtype})"
            )
        y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = y[(y < 0) | (y >= num_classes)][0]
        raise ValueError(
            f"label {bad} is out of range: logits has {num_classes} classes, "
            f"so labels must lie in 0..{num_classes - 1}"
        )
    return y
