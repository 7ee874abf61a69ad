# forgets the ReLU between the two layers
# diagnosis: two-layer-forgot-relu
# ruff: noqa
a, _ = linear_forward(X, params["W1"], params["b1"])
scores, _ = linear_forward(a, params["W2"], params["b2"])
return scores
