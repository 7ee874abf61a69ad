# overwrites the gradients (=) instead of accumulating them (+=)
# ruff: noqa
self.grad = out.grad
other.grad = out.grad
