# the gradients by central differences of the loss, for every parameter, instead of backprop
# diagnosis: looks-numerical
# ruff: noqa
def loss_of(p):
    a, _ = linear_forward(X, p["W1"], p["b1"])
    hidden, _ = relu_forward(a)
    scores, _ = linear_forward(hidden, p["W2"], p["b2"])
    return softmax_cross_entropy(scores, y)[0]

p = {k: np.array(v, dtype=float) for k, v in params.items()}
h = 1e-5
grads = {}
for k in p:
    g = np.zeros_like(p[k])
    for i in np.ndindex(p[k].shape):
        old = p[k][i]
        p[k][i] = old + h
        up = loss_of(p)
        p[k][i] = old - h
        down = loss_of(p)
        p[k][i] = old
        g[i] = (up - down) / (2 * h)
    grads[k] = g
return loss_of(p), grads
