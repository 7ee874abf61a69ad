# keeps a placeholder loss of NaN that is never replaced by the computed value
# diagnosis: not-finite
# ruff: noqa
loss = float("nan")
n = y.shape[0]
diff = y - t
total = np.sum(diff**2) / (2 * n)
return loss, diff / n
