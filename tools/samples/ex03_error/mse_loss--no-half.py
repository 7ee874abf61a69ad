# the loss without the 1/2 of the contract (the gradient is right)
# diagnosis: mse-missing-half
# ruff: noqa
n = y.shape[0]
return float(np.sum((y - t) ** 2) / n), (y - t) / n
