# skips the ReLU in the backward pass
# diagnosis: net-relu-skipped
# ruff: noqa
a, cache1 = linear_forward(X, params["W1"], params["b1"])
h, cache_relu = relu_forward(a)
scores, cache2 = linear_forward(h, params["W2"], params["b2"])
loss, dscores = softmax_cross_entropy(scores, y)
dh, dW2, db2 = linear_backward(dscores, cache2)
_, dW1, db1 = linear_backward(dh, cache1)
return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
