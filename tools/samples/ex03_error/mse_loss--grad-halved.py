# the gradient divided by 2N, like the loss
# diagnosis: factor-half
# ruff: noqa
n = y.shape[0]
return float(np.sum((y - t) ** 2) / (2 * n)), (y - t) / (2 * n)
