# returns dx and dW but forgets db
# diagnosis: wrong-count
# ruff: noqa
x, W, b = cache
return dout @ W.T, x.T @ dout
