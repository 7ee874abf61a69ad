# central differences of linear_forward for every entry of x, W and b, instead of the chain rule
# diagnosis: looks-numerical
# ruff: noqa
x, W, b = (a.copy() for a in cache)
h = 1e-5
grads = []
for p in (x, W, b):
    g = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        old = p[i]
        p[i] = old + h
        up = np.sum(dout * linear_forward(x, W, b)[0])
        p[i] = old - h
        down = np.sum(dout * linear_forward(x, W, b)[0])
        p[i] = old
        g[i] = (up - down) / (2 * h)
    grads.append(g)
return tuple(grads)
