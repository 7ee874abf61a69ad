# the gradient divided by the number of classes instead of the batch size
# diagnosis: constant-factor
# ruff: noqa
n, c = logits.shape
shifted = logits - logits.max(axis=1, keepdims=True)
log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
rows = np.arange(n)
dlogits = np.exp(log_p)
dlogits[rows, labels] -= 1
return float(-log_p[rows, labels].mean()), dlogits / c
