# passes the gradient where the input was negative and blocks it where it was positive
# diagnosis: relu-blocks-positive
# ruff: noqa
self.grad += (self.data < 0) * out.grad
