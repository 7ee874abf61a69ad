# passes the gradient everywhere, also where the input was negative
# ruff: noqa
self.grad += out.grad
