# db = dout.sum(), one number, instead of a sum over the batch only
# diagnosis: wrong-shape
# ruff: noqa
x, W, b = cache
return dout @ W.T, x.T @ dout, dout.sum()
