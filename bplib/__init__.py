"""bplib: the reference library of the course *Backpropagation, from its prehistory to fine-tuning*.

Batch-first row vectors throughout: ``x`` (N, D), ``W`` (D, M), ``b`` (M,),
``out = x @ W + b``. The module map is in ``bplib/API.md``.

``import bplib`` loads numpy only; :mod:`bplib.plots` (matplotlib) and the
scikit-learn loaders in :mod:`bplib.data` import their dependencies on first use.
"""

from __future__ import annotations

import importlib

from .functional import (
    binary_cross_entropy,
    leaky_relu_backward,
    leaky_relu_forward,
    linear_backward,
    linear_forward,
    log_softmax,
    logsumexp,
    mse_loss,
    relu_backward,
    relu_forward,
    sigmoid,
    sigmoid_backward,
    sigmoid_forward,
    softmax,
    softmax_backward,
    softmax_cross_entropy,
    softmax_forward,
    tanh_backward,
    tanh_forward,
)
from .gradcheck import (
    TOLERANCE,
    GradCheckReport,
    check_gradients,
    grad_close,
    numerical_gradient,
    numerical_gradient_array,
    rel_error,
)
from .optim import (
    SGD,
    Adam,
    RMSProp,
    adam_update,
    nesterov_update,
    rmsprop_update,
    sgd_momentum_update,
    sgd_update,
)

__version__ = "0.1.0"

__all__ = [
    "binary_cross_entropy",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "linear_backward",
    "linear_forward",
    "log_softmax",
    "logsumexp",
    "mse_loss",
    "relu_backward",
    "relu_forward",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax",
    "softmax_backward",
    "softmax_cross_entropy",
    "softmax_forward",
    "tanh_backward",
    "tanh_forward",
    "TOLERANCE",
    "GradCheckReport",
    "check_gradients",
    "grad_close",
    "numerical_gradient",
    "numerical_gradient_array",
    "rel_error",
    "SGD",
    "Adam",
    "RMSProp",
    "adam_update",
    "nesterov_update",
    "rmsprop_update",
    "sgd_momentum_update",
    "sgd_update",
]

# Names defined in modules that are written by other parts of the course are
# resolved lazily, so that `import bplib` stays fast and plots never load
# matplotlib unless asked.
_LAZY = {
    "Layer": "layers", "Linear": "layers", "ReLU": "layers", "LeakyReLU": "layers",
    "Sigmoid": "layers", "Tanh": "layers", "Softmax": "layers",
    "Sequential": "model",
    "fit": "train", "evaluate": "train", "predict": "train", "History": "train",
    "EarlyStopping": "train", "confidence_interval": "stats", "Interval": "stats",
    "two_way_interval": "stats",
    "McCullochPittsUnit": "prehistory", "Perceptron": "prehistory", "Adaline": "prehistory",
    "truth_table": "data", "make_moons": "data", "make_circles": "data",
    "make_spirals": "data", "load_digits": "data", "load_breast_cancer": "data",
    "load_diabetes": "data", "train_test_split": "data", "standardise": "data",
    "one_hot": "data", "minibatches": "data", "Split": "data",
    "Value": "autodiff",
}
_SUBMODULES = {
    "functional", "gradcheck", "optim", "layers", "model", "train", "prehistory",
    "data", "plots", "autodiff", "stats",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'bplib' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
