# runs at most 10 epochs, whatever max_epochs says
# diagnosis: perceptron-xor-converged
# ruff: noqa
w, b = np.zeros(X.shape[1]), 0.0
mistakes = []
for _ in range(10):
    count = 0
    for xi, yi in zip(X, y):
        y_hat = 1 if xi @ w + b >= 0 else 0
        count += int(y_hat != yi)
        w, b = perceptron_update(w, b, xi, yi, lr)
    mistakes.append(count)
    if count == 0:
        break
return w, b, mistakes
