# adds the gradient to the velocity instead of subtracting it
# ruff: noqa
v = momentum * v + lr * dw
return w + v, v
