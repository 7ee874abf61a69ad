# differentiates tanh numerically, (tanh(x + h) - tanh(x - h)) / 2h, instead of 1 - out**2
# diagnosis: looks-numerical
# ruff: noqa
h = 1e-5
self.grad += (math.tanh(self.data + h) - math.tanh(self.data - h)) / (2 * h) * out.grad
