# adds the gradient to the velocity instead of subtracting it
# diagnosis: momentum-adds-gradient
# ruff: noqa
v = momentum * v + lr * dw
return w + v, v
