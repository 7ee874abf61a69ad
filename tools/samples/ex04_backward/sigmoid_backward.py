# treats the cache as x and applies the sigmoid again
# diagnosis: sigmoid-cache-as-x
# ruff: noqa
s = 1 / (1 + np.exp(-cache))
return dout * s * (1 - s)
