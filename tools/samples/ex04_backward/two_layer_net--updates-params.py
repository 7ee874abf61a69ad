# takes a gradient step on params inside two_layer_net
# diagnosis: params-modified
# ruff: noqa
a, cache1 = linear_forward(X, params["W1"], params["b1"])
h, cache_relu = relu_forward(a)
scores, cache2 = linear_forward(h, params["W2"], params["b2"])
loss, dscores = softmax_cross_entropy(scores, y)
dh, dW2, db2 = linear_backward(dscores, cache2)
_, dW1, db1 = linear_backward(relu_backward(dh, cache_relu), cache1)
grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
for k in params:
    params[k] -= 0.1 * grads[k]
return loss, grads
