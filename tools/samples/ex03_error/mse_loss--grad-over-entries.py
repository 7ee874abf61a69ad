# the gradient divided by y.size instead of the batch size
# diagnosis: mse-grad-over-entries
# ruff: noqa
n = y.shape[0]
return float(np.sum((y - t) ** 2) / (2 * n)), (y - t) / y.size
