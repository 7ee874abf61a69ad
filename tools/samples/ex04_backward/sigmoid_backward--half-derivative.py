# multiplies dout by out only, forgetting the factor (1 - out)
# diagnosis: wrong-values
# ruff: noqa
out = cache
return dout * out
