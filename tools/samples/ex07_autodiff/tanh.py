# uses 1 - x**2 (the input) instead of 1 - tanh(x)**2 (the output)
# diagnosis: tanh-used-input
# ruff: noqa
self.grad += (1 - self.data ** 2) * out.grad
