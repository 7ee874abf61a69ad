# 1 - out where 1 - out**2 was meant
# diagnosis: tanh-one-minus-out
# ruff: noqa
return dout * (1 - cache)
