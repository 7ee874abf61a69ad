# the error with the wrong sign: y_hat - y instead of y - y_hat
# diagnosis: perceptron-error-sign
# ruff: noqa
y_hat = 1 if x @ w + b >= 0 else 0
err = y_hat - y
return w + lr * err * x, b + lr * err
