# forgets the factor n: x**(n - 1) instead of n * x**(n - 1)
# diagnosis: pow-factor-missing
# ruff: noqa
self.grad += self.data ** (n - 1) * out.grad
