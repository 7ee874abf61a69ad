"""An independent float64 oracle for bplib's contract functions, written in JAX.

Each function is written from its formula with ``jax.numpy`` / ``jax.nn``; nothing
here imports bplib. Gradients come from JAX's reverse mode (``jax.vjp``,
``jax.grad``), never from a hand-written derivative, so a bplib backward
function that agrees with them agrees with the mathematics.

Double precision: every call runs inside ``jax.enable_x64(True)``, the scoped
form of ``jax.config.update("jax_enable_x64", True)``. The scope matters: a
global switch would leak into other tests in the same process (Keras runs on
the JAX backend) and change their dtypes. Each entry point is jit-compiled
once per function: JAX compiles every primitive for every new shape even when
not jitting, so one jitted program per (function, shape) is several times
faster to build, and a repeated shape then costs microseconds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

# --------------------------------------------------------------------------- formulas
# These take and return jax arrays; call them through `value`, `vjp` or `grad`.


def linear(x, W, b):
    """``x @ W + b`` for x (N, D), W (D, M), b (M,)."""
    return x @ W + b


def relu(x):
    """``max(0, x)``, written with ``where`` so that its derivative at 0 is 0 (bplib's choice)."""
    return jnp.where(x > 0, x, 0.0)


def leaky_relu(x, alpha=0.01):
    """``x`` where ``x > 0``, else ``alpha * x``."""
    return jnp.where(x > 0, x, alpha * x)


def sigmoid(x):
    return jax.nn.sigmoid(x)


def tanh(x):
    return jnp.tanh(x)


def softmax(x):
    """Row-wise softmax of x (N, C)."""
    return jax.nn.softmax(x, axis=-1)


def log_softmax(x):
    return jax.nn.log_softmax(x, axis=-1)


def logsumexp(x):
    return jax.nn.logsumexp(x, axis=-1)


def mse_loss(y, t):
    """``sum((y - t)**2) / (2 N)`` with N = ``y.shape[0]``."""
    return jnp.sum((y - t) ** 2) / (2 * y.shape[0])


def softmax_cross_entropy(logits, labels):
    """``-mean_i log softmax(z_i)[y_i]`` for integer labels (N,)."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(logp, labels[:, None], axis=1)
    return -jnp.mean(picked)


def binary_cross_entropy(logits, t):
    """``-sum(t log s + (1 - t) log(1 - s)) / N`` with ``s = sigmoid(z)``, via ``log_sigmoid``."""
    per_entry = t * jax.nn.log_sigmoid(logits) + (1 - t) * jax.nn.log_sigmoid(-logits)
    return -jnp.sum(per_entry) / logits.shape[0]


# --------------------------------------------------------------------------- evaluation


def _float64():
    """A context in which JAX computes in float64 (``jax.enable_x64`` on recent JAX)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # JAX before 0.7

    return enable_x64(True)


def _to_jax(a):
    """Floats become float64, integers stay integers (labels), Python scalars pass through."""
    if isinstance(a, (int, float)):
        return a
    a = np.asarray(a)
    if np.issubdtype(a.dtype, np.integer):
        return jnp.asarray(a)
    return jnp.asarray(a, dtype=jnp.float64)


def _to_numpy(a):
    if isinstance(a, tuple):
        return tuple(_to_numpy(v) for v in a)
    return np.asarray(a, dtype=np.float64)


@functools.cache
def _jitted_value(fn: Callable):
    return jax.jit(fn)


@functools.cache
def _jitted_vjp(fn: Callable, argnums: tuple[int, ...]):
    def run(args, dout):
        def partial(*diff):
            full = list(args)
            for i, a in zip(argnums, diff, strict=True):
                full[i] = a
            return fn(*full)

        out, pullback = jax.vjp(partial, *(args[i] for i in argnums))
        return out, pullback(dout)

    return jax.jit(run)


@functools.cache
def _jitted_value_and_grad(fn: Callable, argnum: int):
    return jax.jit(jax.value_and_grad(fn, argnums=argnum))


def value(fn: Callable, *args) -> np.ndarray:
    """``fn(*args)`` in float64, as a numpy array (a tuple of them if ``fn`` returns a tuple)."""
    with _float64():
        return _to_numpy(_jitted_value(fn)(*map(_to_jax, args)))


def value_and_vjp(
    fn: Callable, args: tuple, dout, argnums: tuple[int, ...] | None = None
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """``out = fn(*args)`` and the vector-Jacobian products ``dout^T d out / d args[i]``.

    The products, one per i in ``argnums``, are what a backward function given
    upstream gradient ``dout`` returns. ``argnums`` defaults to every argument;
    the others are held fixed.
    """
    argnums = tuple(range(len(args))) if argnums is None else tuple(argnums)
    with _float64():
        run = _jitted_vjp(fn, argnums)
        out, grads = run(tuple(map(_to_jax, args)), jnp.asarray(dout, dtype=jnp.float64))
        return _to_numpy(out), _to_numpy(tuple(grads))


def vjp(fn: Callable, args: tuple, dout, argnums: tuple[int, ...] | None = None) -> tuple:
    """Only the vector-Jacobian products of :func:`value_and_vjp`."""
    return value_and_vjp(fn, args, dout, argnums)[1]


def value_and_grad(fn: Callable, *args, argnum: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The scalar ``fn(*args)`` and its gradient with respect to ``args[argnum]``."""
    with _float64():
        return _to_numpy(_jitted_value_and_grad(fn, argnum)(*map(_to_jax, args)))


def grad(fn: Callable, *args, argnum: int = 0) -> np.ndarray:
    """Gradient of the scalar ``fn(*args)`` with respect to ``args[argnum]``."""
    return value_and_grad(fn, *args, argnum=argnum)[1]
