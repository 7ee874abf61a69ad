# the gradient is not divided by the batch size N
# diagnosis: factor-batch-missing
# ruff: noqa
n = y.shape[0]
diff = y - t
return float(np.sum(diff**2) / (2 * n)), diff
