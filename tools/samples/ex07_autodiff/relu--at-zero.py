# passes the gradient where the input is 0 too (x >= 0), where the derivative is taken to be 0
# diagnosis: relu-mask-at-zero
# ruff: noqa
self.grad += (self.data >= 0) * out.grad
