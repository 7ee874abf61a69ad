# multiplies each input's gradient by its own data instead of the other factor's
# diagnosis: mul-own-data
# ruff: noqa
self.grad += self.data * out.grad
other.grad += other.data * out.grad
