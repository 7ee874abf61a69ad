# the gradient with the wrong sign
# diagnosis: wrong-sign
# ruff: noqa
out = cache
return -dout * out * (1 - out)
