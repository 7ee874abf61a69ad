"""A scalar autodiff engine in micrograd's design (A. Karpathy, 2020).

A :class:`Value` holds a number ``data`` and, after :meth:`Value.backward`, the
derivative ``grad`` of the output with respect to it. Each operation returns a new
``Value`` that remembers its inputs (``_prev``) and a closure ``_backward`` that adds
its share of the gradient into theirs, with ``+=``: a value used twice receives the
sum of both paths. ``backward()`` orders the graph topologically without recursion,
so a graph deeper than Python's recursion limit (an unrolled RNN) works.

Input checks (numbers only, finite, a real result with a finite derivative) live in
``bplib/_validate.py``.
"""

from __future__ import annotations

import math

from ._validate import checked, value_args, value_log_args, value_pow_args


class Value:
    """A scalar node of a computational graph: ``data``, ``grad`` and how it was made."""

    @checked(value_args)
    def __init__(self, data, _children=(), _op=""):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = _children
        self._op = _op

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    @checked(value_pow_args)
    def __pow__(self, n):
        out = Value(self.data ** n, (self,), f"**{n}")

        def _backward():
            if n != 0:                     # x ** 0 is the constant 1, also at x = 0
                self.grad += n * self.data ** (n - 1) * out.grad
        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    @checked(value_log_args)
    def log(self):
        out = Value(math.log(self.data), (self,), "log")

        def _backward():
            self.grad += out.grad / self.data
        out._backward = _backward
        return out

    def tanh(self):
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += (1 - out.data ** 2) * out.grad
        out._backward = _backward
        return out

    def relu(self):
        out = Value(max(self.data, 0.0), (self,), "relu")

        def _backward():
            self.grad += (self.data > 0) * out.grad
        out._backward = _backward
        return out

    def topological_order(self) -> list[Value]:
        """Every Value this one depends on, each after all of its inputs (iterative DFS)."""
        order, visited, stack = [], set(), [(self, False)]
        while stack:
            v, inputs_done = stack.pop()
            if inputs_done:
                order.append(v)
            elif id(v) not in visited:
                visited.add(id(v))
                stack.append((v, True))
                stack.extend((child, False) for child in v._prev if id(child) not in visited)
        return order

    def backward(self):
        """Fill ``.grad`` of every Value this one depends on: d self / d self = 1."""
        order = self.topological_order()
        self.grad = 1.0
        for v in reversed(order):
            v._backward()

    def zero_grad(self):
        """Set ``.grad`` back to 0 on this Value and every Value it depends on."""
        for v in self.topological_order():
            v.grad = 0.0

    # the other forms, built on the operations above
    def __neg__(self):
        return self * -1

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return other + (-self)

    def __rmul__(self, other):
        return self * other

    def __truediv__(self, other):
        return self * other ** -1

    def __rtruediv__(self, other):
        return other * self ** -1

    def __repr__(self):
        return f"Value(data={self.data!r}, grad={self.grad!r})"
