# treats the cache as x and applies tanh again
# diagnosis: tanh-cache-as-x
# ruff: noqa
return dout * (1 - np.tanh(cache) ** 2)
