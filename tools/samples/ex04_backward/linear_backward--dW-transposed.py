# dW = dout.T @ x, the transpose of x.T @ dout
# diagnosis: transposed
# ruff: noqa
x, W, b = cache
return dout @ W.T, dout.T @ x, dout.sum(axis=0)
