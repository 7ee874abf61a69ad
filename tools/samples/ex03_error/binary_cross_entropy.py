# the gradient with the wrong sign: t - sigmoid(z)
# diagnosis: bce-grad-reversed
# ruff: noqa
n = logits.shape[0]
z = logits
loss = np.sum(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))) / n
return float(loss), (t - sigmoid(z)) / n
