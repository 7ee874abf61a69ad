# treats the cache as x and applies the sigmoid again
# ruff: noqa
s = 1 / (1 + np.exp(-cache))
return dout * s * (1 - s)
