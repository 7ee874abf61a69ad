# the gradient keeps the 2 of d(u**2)/du although the loss has the 1/2
# diagnosis: factor-two
# ruff: noqa
n = y.shape[0]
return float(np.sum((y - t) ** 2) / (2 * n)), 2 * (y - t) / n
