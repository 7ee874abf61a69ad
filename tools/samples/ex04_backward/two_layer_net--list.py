# returns the gradients as a list [dW1, db1, dW2, db2] instead of a dict
# diagnosis: grads-not-dict
# ruff: noqa
a, cache1 = linear_forward(X, params["W1"], params["b1"])
h, cache_relu = relu_forward(a)
scores, cache2 = linear_forward(h, params["W2"], params["b2"])
loss, dscores = softmax_cross_entropy(scores, y)
dh, dW2, db2 = linear_backward(dscores, cache2)
_, dW1, db1 = linear_backward(relu_backward(dh, cache_relu), cache1)
return loss, [dW1, db1, dW2, db2]
