"""Train step of an MLP 784-1024-1024-10, written four ways, against a float32 GEMM.

The model: ReLU hidden layers, softmax cross-entropy on integer labels, float32,
a batch of N = 256, SGD with momentum 0.9 (lr = 0.01). One train step is a
forward pass, the loss, a backward pass and the update, on a fixed batch.

1. ``bplib Sequential``: ``model.loss(x, y)`` then ``SGD.step(params, grads)``.
2. ``bplib functional``: the forward/backward pairs of :mod:`bplib.functional`
   called by hand, and ``sgd_momentum_update(..., inplace=True)``.
3. ``plain numpy``: the same step written for speed (preallocated buffers,
   ``out=`` GEMMs, in-place ReLU masks and updates). The reference: ratios are
   times divided by this form's time.
4. ``Keras 3 (JAX)``: the same model, ``train_on_batch`` (a jitted step).

FLOPs per step, counting only the matrix products (the elementwise work is
O(N * width), three orders of magnitude smaller). For layers of D_l inputs and
M_l outputs:

    performed = 2 N sum_l D_l M_l        (forward, x @ W)
              + 2 N sum_l D_l M_l        (weight gradients, x^T @ dout)
              + 2 N sum_{l>1} D_l M_l    (input gradients, dout @ W^T; none for layer 1)

The usual shorthand ``6 N P`` (P = sum_l D_l M_l) also counts the first layer's
input gradient, which no form computes; both fractions are printed. A form's
"GEMM fraction" is its FLOP rate divided by the rate of a 1024x1024x1024
float32 ``matmul`` (2 * 1024**3 FLOPs) timed in the same process.

Every time is the median of several repetitions after warm-up; the forms are
interleaved within each repetition so that a busy machine slows them alike.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import numpy as np

SIZES = (784, 1024, 1024, 10)
N = 256
LR = 0.01
MOMENTUM = 0.9
DTYPE = np.float32
WARMUP = 3
REPEATS = 25


def initial_weights(seed: int = 0) -> list[np.ndarray]:
    """He-initialised ``[W1, b1, W2, b2, W3, b3]`` in float32 (Keras's order)."""
    rng = np.random.default_rng(seed)
    out = []
    for d, m in zip(SIZES[:-1], SIZES[1:], strict=True):
        out += [(rng.standard_normal((d, m)) * np.sqrt(2 / d)).astype(DTYPE),
                np.zeros(m, DTYPE)]
    return out


def batch(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, SIZES[0])).astype(DTYPE), rng.integers(0, SIZES[-1], N)


def flops_performed() -> int:
    dm = [d * m for d, m in zip(SIZES[:-1], SIZES[1:], strict=True)]
    return 2 * N * sum(dm) * 2 + 2 * N * sum(dm[1:])


def flops_6np() -> int:
    return 6 * N * sum(d * m for d, m in zip(SIZES[:-1], SIZES[1:], strict=True))


# ---------------------------------------------------------------------- the four forms


def sequential_step(x, y) -> Callable[[], float]:
    from bplib import SGD, Linear, ReLU, Sequential

    model = Sequential([Linear(784, 1024, dtype=DTYPE), ReLU(),
                        Linear(1024, 1024, dtype=DTYPE), ReLU(),
                        Linear(1024, 10, dtype=DTYPE)])
    model.set_weights(initial_weights())
    opt = SGD(lr=LR, momentum=MOMENTUM)
    params = model.parameters(trainable_only=True)

    def step() -> float:
        loss, grads = model.loss(x, y)
        opt.step(params, grads)
        return loss

    return step


def functional_step(x, y) -> Callable[[], float]:
    import bplib.functional as F
    from bplib.optim import sgd_momentum_update

    params = initial_weights()
    W1, b1, W2, b2, W3, b3 = params
    velocities = [np.zeros_like(p) for p in params]

    def step() -> float:
        a1, c1 = F.linear_forward(x, W1, b1)
        h1, r1 = F.relu_forward(a1)
        a2, c2 = F.linear_forward(h1, W2, b2)
        h2, r2 = F.relu_forward(a2)
        z, c3 = F.linear_forward(h2, W3, b3)
        loss, dz = F.softmax_cross_entropy(z, y)
        dh2, dW3, db3 = F.linear_backward(dz, c3)
        dh1, dW2, db2 = F.linear_backward(F.relu_backward(dh2, r2), c2)
        da1 = F.relu_backward(dh1, r1)
        dW1, db1 = x.T @ da1, da1.sum(axis=0)  # the input x needs no gradient
        for p, g, v in zip(params, (dW1, db1, dW2, db2, dW3, db3), velocities, strict=True):
            sgd_momentum_update(p, g, v, LR, MOMENTUM, inplace=True)
        return loss

    return step


def numpy_step(x, y) -> Callable[[], float]:
    params = initial_weights()
    W1, b1, W2, b2, W3, b3 = params
    vel = [np.zeros_like(p) for p in params]
    grads = [np.empty_like(p) for p in params]
    dW1, db1, dW2, db2, dW3, db3 = grads
    h1 = np.empty((N, SIZES[1]), DTYPE)
    h2 = np.empty((N, SIZES[2]), DTYPE)
    z = np.empty((N, SIZES[3]), DTYPE)
    d1, d2 = np.empty_like(h1), np.empty_like(h2)
    rows = np.arange(N)
    lr, mu = DTYPE(LR), DTYPE(MOMENTUM)

    def step() -> float:
        np.matmul(x, W1, out=h1)
        np.add(h1, b1, out=h1)
        np.maximum(h1, 0, out=h1)
        np.matmul(h1, W2, out=h2)
        np.add(h2, b2, out=h2)
        np.maximum(h2, 0, out=h2)
        np.matmul(h2, W3, out=z)
        np.add(z, b3, out=z)
        np.subtract(z, z.max(axis=1, keepdims=True), out=z)  # softmax CE; z becomes dz
        np.exp(z, out=z)
        np.divide(z, z.sum(axis=1, keepdims=True), out=z)
        loss = float(-np.log(z[rows, y]).mean())
        z[rows, y] -= 1
        np.divide(z, N, out=z)
        np.matmul(h2.T, z, out=dW3)
        np.sum(z, axis=0, out=db3)
        np.matmul(z, W3.T, out=d2)
        np.multiply(d2, h2 > 0, out=d2)
        np.matmul(h1.T, d2, out=dW2)
        np.sum(d2, axis=0, out=db2)
        np.matmul(d2, W2.T, out=d1)
        np.multiply(d1, h1 > 0, out=d1)
        np.matmul(x.T, d1, out=dW1)
        np.sum(d1, axis=0, out=db1)
        for p, g, v in zip(params, grads, vel, strict=True):
            v *= mu
            g *= lr
            v -= g
            p += v
        return loss

    return step


def keras_step(x, y) -> Callable[[], float] | None:
    """The same step in Keras 3 on JAX, or None when Keras cannot run on JAX here."""
    import sys

    if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != "jax":
        print("keras was already imported with another backend; Keras form skipped")
        return None
    os.environ["KERAS_BACKEND"] = "jax"
    try:
        import keras
    except ImportError as exc:  # pragma: no cover - keras is in the course extra
        print(f"keras not available ({exc}); Keras form skipped")
        return None
    layers = keras.layers
    model = keras.Sequential([keras.Input((SIZES[0],)),
                              layers.Dense(SIZES[1], activation="relu"),
                              layers.Dense(SIZES[2], activation="relu"),
                              layers.Dense(SIZES[3])])
    model.set_weights(initial_weights())
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LR, momentum=MOMENTUM),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    def step() -> float:
        return float(model.train_on_batch(x, y))

    return step


def gemm_step() -> Callable[[], np.ndarray]:
    rng = np.random.default_rng(2)
    a = rng.standard_normal((1024, 1024)).astype(DTYPE)
    b = rng.standard_normal((1024, 1024)).astype(DTYPE)
    c = np.empty_like(a)
    return lambda: np.matmul(a, b, out=c)


# ---------------------------------------------------------------------- timing


def time_forms(forms: dict[str, Callable], repeats: int = REPEATS,
               warmup: int = WARMUP) -> dict[str, list[float]]:
    """Seconds per call of each form, ``repeats`` samples each.

    Each repetition calls every form once, in an order that rotates from one
    repetition to the next, so that load from other processes hits all forms alike.
    """
    for f in forms.values():
        for _ in range(warmup):
            f()
    names = list(forms)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            f0 = _minor_faults()
            t0 = time.perf_counter()
            forms[name]()
            samples[name].append(time.perf_counter() - t0)
            FAULTS[name] = FAULTS.get(name, 0) + (_minor_faults() - f0) / repeats
    return samples


#: mean minor page faults per call of each form, filled by :func:`time_forms`
FAULTS: dict[str, float] = {}


def _minor_faults() -> int:
    """Page faults so far (memory the allocator gave back to the system and took again)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def check_same_losses(forms: dict[str, Callable[[], float]], x, y) -> None:
    """The forms start from the same weights, so their first losses must agree."""
    first = {name: f() for name, f in forms.items()}
    ref = first["plain numpy"]
    for name, loss in first.items():
        if not np.isclose(loss, ref, rtol=1e-3):
            raise RuntimeError(f"{name} gives loss {loss} on the first step, plain numpy {ref}")


def main() -> None:
    x, y = batch()
    forms = {"bplib Sequential": sequential_step(x, y),
             "bplib functional": functional_step(x, y),
             "plain numpy": numpy_step(x, y)}
    k = keras_step(x, y)
    if k is not None:
        forms["Keras 3 (JAX)"] = k
    check_same_losses(forms, x, y)
    samples = time_forms({"GEMM": gemm_step(), **forms})
    med = {name: statistics.median(s) for name, s in samples.items()}
    gemm_rate = 2 * 1024**3 / med.pop("GEMM")
    ref = samples["plain numpy"]
    perf, six = flops_performed(), flops_6np()
    print(f"MLP {'-'.join(map(str, SIZES))}, float32, batch {N}, SGD momentum {MOMENTUM}; "
          f"median of {REPEATS} interleaved repetitions after {WARMUP} warm-up steps")
    print(f"GEMM 1024x1024x1024 float32: {gemm_rate / 1e9:.1f} GFLOP/s "
          f"(best {2 * 1024**3 / min(samples['GEMM']) / 1e9:.1f})")
    print(f"FLOPs per step: performed {perf / 1e9:.3f} G, 6NP {six / 1e9:.3f} G "
          f"(P = {sum(d * m for d, m in zip(SIZES[:-1], SIZES[1:], strict=True))} weights)")
    print(f"{'form':<18} {'ms/step':>8} {'best':>7} {'vs numpy':>9} {'GFLOP/s':>8} "
          f"{'GEMM frac':>10} {'(6NP)':>7} {'faults':>7}")
    for name, t in med.items():
        # the ratio to plain numpy is the median of the per-repetition ratios
        ratio = statistics.median(a / b for a, b in zip(samples[name], ref, strict=True))
        print(f"{name:<18} {t * 1e3:8.2f} {min(samples[name]) * 1e3:7.2f} {ratio:8.3f}x "
              f"{perf / t / 1e9:8.1f} {perf / t / gemm_rate:10.3f} {six / t / gemm_rate:7.3f} "
              f"{FAULTS.get(name, 0):7.0f}")
    print("faults: minor page faults per step, memory the allocator returned to the system "
          "and faulted back in")


if __name__ == "__main__":
    main()
