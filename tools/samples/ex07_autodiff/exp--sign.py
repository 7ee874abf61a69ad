# subtracts the gradient instead of adding it
# diagnosis: value-wrong-sign
# ruff: noqa
self.grad -= out.data * out.grad
