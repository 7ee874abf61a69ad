# uses x where the derivative of exp(x) is exp(x)
# diagnosis: exp-used-input
# ruff: noqa
self.grad += self.data * out.grad
