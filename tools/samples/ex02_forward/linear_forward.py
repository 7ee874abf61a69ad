# forgets the bias: out = x @ W
# ruff: noqa
return x @ W, (x, W, b)
