# returns (scores, cache) like the layer functions, where only the scores are asked for
# diagnosis: not-numbers
# ruff: noqa
a, cache1 = linear_forward(X, params["W1"], params["b1"])
h, cache_relu = relu_forward(a)
scores, cache2 = linear_forward(h, params["W2"], params["b2"])
return scores, (cache1, cache_relu, cache2)
