# forgets to lower the exponent: n * x**n instead of n * x**(n - 1)
# diagnosis: pow-exponent-not-lowered
# ruff: noqa
self.grad += n * self.data ** n * out.grad
