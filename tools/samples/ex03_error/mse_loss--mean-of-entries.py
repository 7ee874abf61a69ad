# the loss as np.mean over every entry, halved
# diagnosis: mse-mean-over-entries
# ruff: noqa
n = y.shape[0]
return float(np.mean((y - t) ** 2) / 2), (y - t) / n
