# the mask taken from dout instead of from the cached input x
# ruff: noqa
return dout * (dout > 0)
