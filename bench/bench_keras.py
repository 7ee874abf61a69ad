"""Time per epoch of the same network trained by bplib and by Keras 3 (JAX backend).

The model: 64-256-256-10, ReLU hidden layers, softmax cross-entropy on integer
labels, float32, on the digits training split (1347 images), mini-batches of 32 in
a fixed order, plain SGD (lr = 0.01). Both start from the same weights.

``bplib``: ``model.fit(..., epochs=1)`` (NumPy, one forward/backward per batch).
``Keras``: ``model.fit(..., epochs=1)``; its first epoch traces and compiles the
train step with XLA, so one warm-up epoch of each is excluded. Each figure is the
median of ``REPEATS`` epochs; the two are interleaved so that a busy machine slows
both alike. Printed, never asserted.

On a busy machine NumPy's multi-threaded BLAS can be slowed many times over by
oversubscription (measured here at load 13 on 2 cores: bplib 2.8 s/epoch with the
default threads, 0.08 s with ``OMP_NUM_THREADS=1``); the BLAS thread setting and the
load average are printed with the figures.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

SIZES = (64, 256, 256, 10)
BATCH = 32
LR = 0.01
REPEATS = 7


def models():
    """``(bplib_model, keras_model)`` with the same float32 weights."""
    os.environ["KERAS_BACKEND"] = "jax"
    import keras

    import bplib

    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((SIZES[0],))]
                          + [keras.layers.Dense(m, activation="relu") for m in SIZES[1:-1]]
                          + [keras.layers.Dense(SIZES[-1])])
    km.compile(optimizer=keras.optimizers.SGD(learning_rate=LR),
               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    layers = []
    for d, m in zip(SIZES[:-1], SIZES[1:], strict=True):
        layers += [bplib.Linear(d, m, dtype=np.float32), bplib.ReLU()]
    bm = bplib.Sequential(layers[:-1], loss="softmax_cross_entropy")
    bm.set_weights(km.get_weights())
    return bm, km


def epoch_times(bm, km, X, y, repeats: int = REPEATS) -> dict[str, list[float]]:
    """Seconds per epoch of each library, warm-up epoch excluded, interleaved."""
    import bplib

    opt = bplib.SGD(lr=LR)

    def run_bplib():
        bm.fit(X, y, optimizer=opt, epochs=1, batch_size=BATCH, shuffle=False, verbose=False)

    def run_keras():
        km.fit(X, y, epochs=1, batch_size=BATCH, shuffle=False, verbose=0)

    runs = {"bplib (NumPy)": run_bplib, "Keras 3 (JAX)": run_keras}
    for run in runs.values():
        run()  # warm-up: Keras traces and compiles its train step here
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    import bplib

    split = bplib.load_digits(seed=0)
    X, y = split.X_train.astype(np.float32), split.y_train
    bm, km = models()
    times = epoch_times(bm, km, X, y)
    steps = -(-X.shape[0] // BATCH)
    print(f"MLP {'-'.join(map(str, SIZES))}, digits ({X.shape[0]} images), batch {BATCH}, "
          f"SGD lr {LR}, float32; median of {REPEATS} epochs after one warm-up epoch")
    threads = os.environ.get("OMP_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS")
    print(f"  BLAS threads {threads or 'default'}, load average {os.getloadavg()[0]:.1f}, "
          f"{os.cpu_count()} CPUs")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, m in medians.items():
        print(f"  {name:<14} {m * 1e3:8.1f} ms/epoch  ({m / steps * 1e6:6.0f} us/step)")
    b, k = medians["bplib (NumPy)"], medians["Keras 3 (JAX)"]
    print(f"  ratio bplib / Keras: {b / k:.2f}")


if __name__ == "__main__":
    main()
