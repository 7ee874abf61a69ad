# the loss summed over the batch instead of averaged (the gradient is right)
# diagnosis: loss-summed
# ruff: noqa
n = logits.shape[0]
shifted = logits - logits.max(axis=1, keepdims=True)
log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
rows = np.arange(n)
dlogits = np.exp(log_p)
dlogits[rows, labels] -= 1
return float(-log_p[rows, labels].sum()), dlogits / n
