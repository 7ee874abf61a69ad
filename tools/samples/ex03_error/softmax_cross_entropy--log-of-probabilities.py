# the log of the probabilities (which are 0 for very negative logits) instead of log-softmax
# diagnosis: unstable-log-zero
# ruff: noqa
n = logits.shape[0]
shifted = logits - logits.max(axis=1, keepdims=True)
p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
log_p = np.log(p)
rows = np.arange(n)
dlogits = p.copy()
dlogits[rows, labels] -= 1
return float(-log_p[rows, labels].mean()), dlogits / n
