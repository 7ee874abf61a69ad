# 1 - out.data where the derivative of tanh is 1 - out.data**2
# diagnosis: value-local-grad-wrong
# ruff: noqa
self.grad += (1 - out.data) * out.grad
