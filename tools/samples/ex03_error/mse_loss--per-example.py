# returns one loss per example instead of their mean
# diagnosis: not-one-number
# ruff: noqa
n = y.shape[0]
diff = (y - t).reshape(n, -1)
return np.sum(diff**2, axis=1) / 2, (y - t) / n
