# also takes a gradient step on its inputs' data inside the backward rule
# diagnosis: value-data-changed
# ruff: noqa
self.grad += other.data * out.grad
other.grad += self.data * out.grad
self.data -= 0.01 * self.grad
