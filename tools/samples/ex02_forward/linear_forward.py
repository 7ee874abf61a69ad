# forgets the bias: out = x @ W
# diagnosis: linear-forgot-bias
# ruff: noqa
return x @ W, (x, W, b)
