# db summed over axis 1 (the outputs) instead of axis 0 (the batch)
# diagnosis: db-wrong-axis
# ruff: noqa
x, W, b = cache
return dout @ W.T, x.T @ dout, dout.sum(axis=1)
