# never stops early: runs all max_epochs even after an epoch with no mistake
# diagnosis: perceptron-no-early-stop
# ruff: noqa
w, b = np.zeros(X.shape[1]), 0.0
mistakes = []
for _ in range(max_epochs):
    count = 0
    for xi, yi in zip(X, y):
        y_hat = 1 if xi @ w + b >= 0 else 0
        count += int(y_hat != yi)
        w, b = perceptron_update(w, b, xi, yi, lr)
    mistakes.append(count)
return w, b, mistakes
