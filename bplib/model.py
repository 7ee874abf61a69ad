"""A sequential model: layers applied in order, a loss, and backpropagation through them.

``forward`` runs the layers left to right; ``backward`` runs their backward
functions right to left, each layer passing ``dx`` to the one before it and
keeping its own parameter gradients. For the cross-entropy losses the model's
output is the logits; :meth:`Sequential.predict` turns them into probabilities.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from . import functional as F
from .layers import Layer, Sigmoid, Softmax

__all__ = ["Sequential", "LOSSES"]

#: loss name -> function ``(output, y) -> (loss, doutput)`` of :mod:`bplib.functional`
LOSSES = {
    "softmax_cross_entropy": F.softmax_cross_entropy,
    "binary_cross_entropy": F.binary_cross_entropy,
    "mse": F.mse_loss,
}
_CLASSIFICATION = ("softmax_cross_entropy", "binary_cross_entropy")


class Sequential:
    """Layers applied one after the other, trained on one loss.

    Parameters
    ----------
    layers : iterable of Layer
    loss : {"softmax_cross_entropy", "binary_cross_entropy", "mse"}
        ``softmax_cross_entropy`` takes integer labels (N,) and logits (N, C);
        ``binary_cross_entropy`` takes 0/1 targets and logits (N,) or (N, 1);
        ``mse`` is ``sum((y - t)**2) / (2 N)``.

    Parameter names are ``"<i>.W"`` and ``"<i>.b"``, where ``i`` is the layer's
    index in ``layers``; ``parameters(keys="numbered")`` names them ``"W1"``,
    ``"b1"``, ``"W2"``, ... as the exercises do. Gradients have the same keys.
    """

    def __init__(self, layers: Iterable[Layer], loss: str = "softmax_cross_entropy") -> None:
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] is a {type(layer).__name__}, not a bplib Layer")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
        last = self.layers[-1]
        if (loss, type(last)) in (("softmax_cross_entropy", Softmax),
                                  ("binary_cross_entropy", Sigmoid)):
            raise ValueError(
                f"the last layer is {type(last).__name__}, but loss={loss!r} already applies it "
                "to the logits; remove the last layer (predict() returns probabilities)"
            )
        self.loss_name = loss
        self._loss_fn = LOSSES[loss]

    @property
    def is_classifier(self) -> bool:
        """True for the cross-entropy losses (accuracy is then reported)."""
        return self.loss_name in _CLASSIFICATION

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the first parameter (float64 if the model has none)."""
        for layer in self.layers:
            for p in layer.params.values():
                return p.dtype
        return np.dtype(np.float64)

    # ------------------------------------------------------------------ passes

    def forward(self, x) -> np.ndarray:
        """Output of the last layer (the logits for the cross-entropy losses)."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, dout, input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate ``dout`` (gradient w.r.t. the output); fills every layer's ``grads``.

        Returns ``dx``, the gradient with respect to the model's input, or None
        with ``input_grad=False`` (which saves the first layer's ``dout @ W^T``).
        """
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            dout = self.layers[i].backward(dout, input_grad=input_grad or i > 0)
        return dout

    def loss(self, x, y) -> tuple[float, dict[str, np.ndarray]]:
        """One forward and one backward pass: ``(loss, grads)`` keyed like :meth:`parameters`."""
        value, _ = self.forward_backward(x, y)
        return value, self.gradients()

    def forward_backward(self, x, y) -> tuple[float, np.ndarray]:
        """Forward, loss and backward in one call; returns ``(loss, output)``.

        The gradients are left in each layer's ``grads`` (see :meth:`gradients`).
        """
        out = self.forward(x)
        value, dout = self._loss_fn(out, y)
        self.backward(dout, input_grad=False)
        return value, out

    def loss_value(self, out, y) -> float:
        """The loss of a model output ``out`` against targets ``y`` (no backward)."""
        return self._loss_fn(out, y)[0]

    # ------------------------------------------------------------------ parameters

    def _named(self, attr: str, trainable_only: bool, keys: str) -> dict[str, np.ndarray]:
        if keys not in ("index", "numbered"):
            raise ValueError(f'keys must be "index" or "numbered", got {keys!r}')
        named, k = {}, 0
        for i, layer in enumerate(self.layers):
            k += bool(layer.params)  # layers with parameters count from 1, frozen or not
            if layer.trainable or not trainable_only:
                for name, arr in getattr(layer, attr).items():
                    named[f"{i}.{name}" if keys == "index" else f"{name}{k}"] = arr
        return named

    def parameters(self, trainable_only: bool = False, *, keys: str = "index"
                   ) -> dict[str, np.ndarray]:
        """The parameter arrays themselves (not copies), keyed ``"<i>.W"``, ``"<i>.b"``.

        ``i`` is the layer's index in ``layers``. With ``keys="numbered"`` the keys
        are those of the exercises and of Keras's order instead: ``"W1"``, ``"b1"``,
        ``"W2"``, ... counting only the layers that have parameters, so that for
        ``[Linear, ReLU, Linear]`` ``"0.W"`` is ``"W1"`` and ``"2.W"`` is ``"W2"``.
        """
        return self._named("params", trainable_only, keys)

    def gradients(self, trainable_only: bool = False, *, keys: str = "index"
                  ) -> dict[str, np.ndarray]:
        """The gradients left by the last backward pass, keyed like :meth:`parameters`.

        ``gradients()["0.W"]`` is the ``dW`` of layer 0, the gradient of ``parameters()["0.W"]``.
        """
        return self._named("grads", trainable_only, keys)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters in Keras's order: ``[W1, b1, W2, b2, ...]``, W (in, out)."""
        return [p.copy() for p in self.parameters().values()]

    def set_weights(self, weights) -> None:
        """Overwrite the parameters, in the order of :meth:`get_weights`.

        Works with ``keras_model.get_weights()`` for a stack of Dense layers with
        biases. Every shape is checked before anything is written; values are
        cast to each parameter's dtype.
        """
        params = self.parameters()
        weights = list(weights)
        shapes = [p.shape for p in params.values()]
        if len(weights) != len(params):
            raise ValueError(
                f"set_weights got {len(weights)} arrays but the model has {len(params)} "
                f"parameters, [W, b] per Linear layer, of shapes {shapes}"
            )
        arrays = [np.asarray(w) for w in weights]
        for k, ((name, p), a) in enumerate(zip(params.items(), arrays, strict=True)):
            if a.shape != p.shape:
                raise ValueError(
                    f"weights[{k}] has shape {a.shape} but parameter {name!r} "
                    f"(layer {self.layers[int(name.split('.')[0])].name}) has shape {p.shape}; "
                    f"the model expects shapes {shapes}"
                )
        for p, a in zip(params.values(), arrays, strict=True):
            p[...] = a

    def count_params(self) -> int:
        """Total number of parameter entries."""
        return sum(p.size for p in self.parameters().values())

    # ------------------------------------------------------------------ inference

    def output_to_prediction(self, out: np.ndarray) -> np.ndarray:
        """Probabilities for the cross-entropy losses (softmax / sigmoid), ``out`` for mse."""
        if self.loss_name == "softmax_cross_entropy":
            return F.softmax(out)
        if self.loss_name == "binary_cross_entropy":
            return F.sigmoid(out)
        return out

    def output_to_classes(self, out: np.ndarray) -> np.ndarray:
        """Class indices (N,) from a model output (logits for the cross-entropy losses).

        Softmax cross-entropy and mse with several outputs: the arg-max; binary
        cross-entropy: ``logit > 0``; mse with one output: ``out >= 0.5``.
        """
        if out.ndim == 2 and out.shape[1] > 1:
            return np.argmax(out, axis=1)
        flat = out.reshape(out.shape[0])
        if self.loss_name == "binary_cross_entropy":
            return (flat > 0).astype(np.int64)
        return (flat >= 0.5).astype(np.int64)

    def predict(self, x) -> np.ndarray:
        """Probabilities for the cross-entropy losses, the raw output for mse."""
        return self.output_to_prediction(self.forward(x))

    def predict_classes(self, x) -> np.ndarray:
        """Predicted class of every row of ``x``, shape (N,)."""
        return self.output_to_classes(self.forward(x))

    def evaluate(self, x, y, batch_size: int = 1024) -> dict[str, float]:
        """``{"loss": ..., "accuracy": ...}`` (accuracy for classification only)."""
        from .train import evaluate

        return evaluate(self, x, y, batch_size=batch_size)

    def fit(self, X, y, **kwargs):
        """Train the model; the same as :func:`bplib.train.fit` ``(model, X, y, ...)``."""
        from .train import fit

        return fit(self, X, y, **kwargs)

    def __repr__(self) -> str:
        inner = "".join(
            f"\n  {i}: {layer!r}" + ("" if layer.trainable else "  (frozen)")
            for i, layer in enumerate(self.layers)
        )
        return f"Sequential(loss={self.loss_name!r},{inner}\n)"
