# differentiates tanh numerically, (tanh(x + h) - tanh(x - h)) / 2h, instead of 1 - out**2
# diagnosis: looks-numerical
# ruff: noqa
x = np.arctanh(cache)
h = 1e-5
return dout * (tanh_forward(x + h)[0] - tanh_forward(x - h)[0]) / (2 * h)
