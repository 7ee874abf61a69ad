# forgets the chain rule: adds exp(x) without multiplying by out.grad
# ruff: noqa
self.grad += out.data
