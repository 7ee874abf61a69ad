# passes the gradient everywhere, also where the input was negative
# diagnosis: relu-passes-negative
# ruff: noqa
self.grad += out.grad
