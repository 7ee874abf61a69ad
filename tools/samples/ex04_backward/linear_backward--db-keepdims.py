# db summed with keepdims=True, shape (1, M) instead of (M,)
# diagnosis: shape-extra-axis
# ruff: noqa
x, W, b = cache
return dout @ W.T, x.T @ dout, dout.sum(axis=0, keepdims=True)
