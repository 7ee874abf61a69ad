# the gradient as softmax / N, without subtracting 1 at the true class
# diagnosis: ce-onehot-missing
# ruff: noqa
n = logits.shape[0]
shifted = logits - logits.max(axis=1, keepdims=True)
log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
rows = np.arange(n)
return float(-log_p[rows, labels].mean()), np.exp(log_p) / n
