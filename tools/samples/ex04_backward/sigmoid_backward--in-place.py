# turns the cache into the derivative in place (out *= 1 - out)
# diagnosis: cache-modified
# ruff: noqa
out = cache
out *= 1 - out
return dout * out
