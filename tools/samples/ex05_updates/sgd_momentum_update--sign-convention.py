# the other sign convention: v = mu*v + lr*dw and w = w - v
# diagnosis: momentum-sign-convention
# ruff: noqa
v = momentum * v + lr * dw
return w - v, v
