# divides by the square root of m_hat instead of v_hat
# diagnosis: unstable-nan
# ruff: noqa
m = beta1 * m + (1 - beta1) * dw
v = beta2 * v + (1 - beta2) * dw**2
m_hat = m / (1 - beta1**t)
v_hat = v / (1 - beta2**t)
return w - lr * m_hat / (np.sqrt(m_hat) + eps), m, v
