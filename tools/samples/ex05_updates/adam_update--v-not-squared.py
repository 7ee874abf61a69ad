# averages dw instead of dw**2 into v (then takes the square root of negative numbers)
# diagnosis: adam-v-not-squared
# ruff: noqa
m = beta1 * m + (1 - beta1) * dw
v = beta2 * v + (1 - beta2) * dw
m_hat = m / (1 - beta1**t)
v_hat = v / (1 - beta2**t)
return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
