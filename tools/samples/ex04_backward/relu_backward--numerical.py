# differentiates ReLU numerically, (relu(x + h) - relu(x - h)) / 2h, with h = 1e-3
# diagnosis: looks-numerical-at-kink
# ruff: noqa
h = 1e-3
x = np.asarray(cache, dtype=float)
return dout * (np.maximum(x + h, 0) - np.maximum(x - h, 0)) / (2 * h)
