"""Exercise 2: the forward pass (a linear layer, ReLU, the sigmoid, a two-layer network)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from bpgrade.checks._trust import BUILTINS as __builtins__  # noqa: F401 - see _trust
from bpgrade.checks.compare import (
    call,
    check_unchanged,
    compare_array,
    fmt,
    refuse_reference,
    rng,
    unpack,
)
from bpgrade.checks.diagnoses import diagnose
from bpgrade.language import N_, text
from bplib import functional as F

__all__ = ["check_forward", "check_linear_forward", "check_relu_forward",
           "check_sigmoid_forward", "check_two_layer_forward"]


def check_forward(
    student_fn: Callable,
    reference_fn: Callable,
    inputs: dict[str, np.ndarray],
    fn_name: str,
    cache_names: Sequence[str],
    cache_from: Callable[[dict, np.ndarray], Sequence[np.ndarray]],
    describe_inputs: str = "",
    mistakes: Sequence[tuple[str, Callable[..., np.ndarray]]] = (),
) -> None:
    """Check a forward function ``student_fn(*inputs) -> (out, cache)``.

    ``cache_from(inputs, out)`` gives the arrays the contract puts in the cache, named
    ``cache_names`` (a single name means the cache is that array itself). ``mistakes``
    are ``(diagnosis id, fn(*inputs) -> the wrong out)``.
    """
    arrays = {k: np.array(v, dtype=np.float64) for k, v in inputs.items()}
    args = {k: v.copy() for k, v in arrays.items()}
    result = call(student_fn, list(args.values()), fn_name, describe_inputs)
    got_out, got_cache = unpack(result, ("out", "cache"), fn_name)
    check_unchanged(arrays, args, fn_name)
    out, _ = reference_fn(*arrays.values())
    first = next(iter(arrays.values()))
    compare_array(got_out, out, "out", fn_name, reference="expected",
                like=N_("the expected output"), like_shape=out.shape,
                batch_size=first.shape[0] if first.ndim else None,
                mistakes=[(id_, lambda fn=fn: fn(*arrays.values())) for id_, fn in mistakes])
    want = cache_from(arrays, out)
    if len(cache_names) == 1:
        parts = (got_cache,)
    else:
        parts = unpack(got_cache, cache_names, text("{fn}'s cache", fn=fn_name))
    for cname, got, w in zip(cache_names, parts, want, strict=True):
        compare_array(got, w, text("the cache entry {name}", name=cname), fn_name,
                      reference="expected")


def check_linear_forward(student_fn: Callable, N: int = 4, D: int = 3, M: int = 5,
                         seed: int = 0) -> None:
    """``linear_forward(x, W, b) -> (out, (x, W, b))`` with ``out = x @ W + b``."""
    refuse_reference(student_fn, F.linear_forward, "linear_forward")
    gen = rng(seed)
    inputs = {"x": gen.standard_normal((N, D)), "W": gen.standard_normal((D, M)),
              "b": gen.standard_normal(M)}
    check_forward(student_fn, F.linear_forward, inputs, "linear_forward", ("x", "W", "b"),
                  lambda a, out: (a["x"], a["W"], a["b"]),
                  mistakes=[("linear-forgot-bias", lambda x, W, b: x @ W)])


def check_relu_forward(student_fn: Callable, shape: tuple = (4, 5), seed: int = 0) -> None:
    """``relu_forward(x) -> (max(0, x), x)``."""
    refuse_reference(student_fn, F.relu_forward, "relu_forward")
    x = rng(seed).standard_normal(shape)
    check_forward(student_fn, F.relu_forward, {"x": x}, "relu_forward", ("x",),
                  lambda a, out: (a["x"],),
                  mistakes=[("relu-reduces", lambda x: np.max(x, 0))])


def check_sigmoid_forward(student_fn: Callable, shape: tuple = (4, 5), seed: int = 0,
                          scale: float = 3.0) -> None:
    """``sigmoid_forward(x) -> (out, out)``; with ``scale=1000`` it checks stability."""
    refuse_reference(student_fn, F.sigmoid_forward, "sigmoid_forward")
    x = scale * rng(seed).standard_normal(shape)
    check_forward(student_fn, F.sigmoid_forward, {"x": x}, "sigmoid_forward", ("out",),
                  lambda a, out: (out,),
                  describe_inputs=text("inputs as large as {size}", size=fmt(abs(x).max())))


# --------------------------------------------------------------------------- a two-layer network
# (shared with exercise 4's check of the whole network's gradients)


def two_layer_scores(params: dict, X: np.ndarray) -> np.ndarray:
    """``relu(X W1 + b1) W2 + b2``, by bplib's layer functions."""
    h, _ = F.relu_forward(F.linear_forward(X, params["W1"], params["b1"])[0])
    return F.linear_forward(h, params["W2"], params["b2"])[0]


def _two_layer_params(gen, D: int, H: int, C: int) -> dict[str, np.ndarray]:
    return {"W1": gen.standard_normal((D, H)) / np.sqrt(D), "b1": 0.1 * gen.standard_normal(H),
            "W2": gen.standard_normal((H, C)) / np.sqrt(H), "b2": 0.1 * gen.standard_normal(C)}


def two_layer_problem(seed: int, N: int, D: int, H: int, C: int):
    """Random parameters and data whose hidden pre-activations stay away from ReLU's kink."""
    gen = rng(seed)
    for _ in range(100):
        params = _two_layer_params(gen, D, H, C)
        X = gen.standard_normal((N, D))
        pre = X @ params["W1"] + params["b1"]
        if np.min(np.abs(pre)) > 1e-3:
            break
    y = gen.integers(0, C, size=N)
    return params, X, y


def copy_params(params: dict) -> dict:
    """New float64 arrays of every parameter."""
    return {k: np.array(v, dtype=np.float64) for k, v in params.items()}


def check_params_unchanged(saved: dict, given: dict, fn_name: str) -> None:
    """Every ``given[k]`` (the dict the student's function got) must still be the grader's
    array, equal to ``saved[k]`` (a replaced entry is named without being read)."""
    for k, v in saved.items():
        if k not in given or type(given[k]) is not np.ndarray or \
                not np.array_equal(given[k], v):
            raise diagnose("params-modified", fn=fn_name, key=repr(k))


def _without_relu(params: dict, X: np.ndarray) -> np.ndarray:
    a = X @ params["W1"] + params["b1"]
    return a @ params["W2"] + params["b2"]


def check_two_layer_forward(student_fn: Callable, N: int = 4, D: int = 3, H: int = 6,
                            C: int = 2, seed: int = 0) -> None:
    """``two_layer_forward(params, X) -> scores``, ``relu(X W1 + b1) W2 + b2``, shape (N, C)."""
    fn_name = "two_layer_forward"
    params, X, _ = two_layer_problem(seed, N, D, H, C)
    given, X_arg = copy_params(params), X.copy()
    scores = unpack(call(student_fn, (given, X_arg), fn_name), ("scores",), fn_name)[0]
    check_params_unchanged(params, given, fn_name)
    check_unchanged({"X": X}, {"X": X_arg}, fn_name)
    compare_array(scores, two_layer_scores(params, X), "scores", fn_name, reference="expected",
                like="(N, C)", like_shape=(N, C),
                mistakes=[("two-layer-forgot-relu", lambda: _without_relu(params, X))])
