# the gradient as (t - y) / N
# diagnosis: mse-grad-reversed
# ruff: noqa
n = y.shape[0]
return float(np.sum((y - t) ** 2) / (2 * n)), (t - y) / n
