# computes the loss and returns None for the gradient
# diagnosis: entry-none
# ruff: noqa
n = y.shape[0]
return float(np.sum((y - t) ** 2) / (2 * n)), None
