# overwrites the gradients (=) instead of accumulating them (+=)
# diagnosis: value-grad-overwritten
# ruff: noqa
self.grad = out.grad
other.grad = out.grad
