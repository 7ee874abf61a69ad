# takes abs(x) ** (n - 1) to avoid fractional powers of negative numbers
# diagnosis: value-graph-gradient-wrong
# ruff: noqa
self.grad += n * abs(self.data) ** (n - 1) * out.grad
