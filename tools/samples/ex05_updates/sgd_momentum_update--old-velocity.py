# updates w with the old velocity, before v is updated
# diagnosis: momentum-old-velocity
# ruff: noqa
w_new = w + v
v = momentum * v - lr * dw
return w_new, v
