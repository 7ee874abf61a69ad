# eps inside the square root
# diagnosis: adam-eps-inside-sqrt
# ruff: noqa
m = beta1 * m + (1 - beta1) * dw
v = beta2 * v + (1 - beta2) * dw**2
m_hat = m / (1 - beta1**t)
v_hat = v / (1 - beta2**t)
return w - lr * m_hat / np.sqrt(v_hat + eps), m, v
