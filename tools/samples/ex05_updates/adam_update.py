# no bias correction of m and v
# diagnosis: adam-no-bias-correction
# ruff: noqa
m = beta1 * m + (1 - beta1) * dw
v = beta2 * v + (1 - beta2) * dw**2
return w - lr * m / (np.sqrt(v) + eps), m, v
