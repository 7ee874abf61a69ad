# the loss without its log(1 + exp(-|z|)) term
# diagnosis: wrong-loss
# ruff: noqa
n = logits.shape[0]
z = logits
loss = np.sum(np.maximum(z, 0) - z * t) / n
return float(loss), (sigmoid(z) - t) / n
