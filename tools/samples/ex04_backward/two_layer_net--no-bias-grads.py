# returns the weight gradients only, without b1 and b2
# diagnosis: grads-missing-keys
# ruff: noqa
a, cache1 = linear_forward(X, params["W1"], params["b1"])
h, cache_relu = relu_forward(a)
scores, cache2 = linear_forward(h, params["W2"], params["b2"])
loss, dscores = softmax_cross_entropy(scores, y)
dh, dW2, db2 = linear_backward(dscores, cache2)
_, dW1, db1 = linear_backward(relu_backward(dh, cache_relu), cache1)
return loss, {"W1": dW1, "W2": dW2}
