# trains, but returns the initial weights instead of the trained ones
# diagnosis: perceptron-misclassifies
# ruff: noqa
w0, b0 = np.zeros(X.shape[1]), 0.0
w, b = w0, b0
mistakes = []
for _ in range(max_epochs):
    count = 0
    for xi, yi in zip(X, y):
        y_hat = 1 if xi @ w + b >= 0 else 0
        count += int(y_hat != yi)
        w, b = perceptron_update(w, b, xi, yi, lr)
    mistakes.append(count)
    if count == 0:
        break
return w0, b0, mistakes
