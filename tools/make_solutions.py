# ruff: noqa: E501  (the notebook text below is laid out for the notebooks, not for this file)
"""Write the nbgrader source notebooks solutions/exNN_*/exNN_*.ipynb from the text below.

Run ``python tools/make_solutions.py`` after editing this file, then
``python tools/build_exercises.py`` to regenerate the student versions in exercises/.

Each notebook teaches as it goes: an explanation and the formula, the function
to write alone in a solution cell (``### BEGIN SOLUTION`` / ``### END SOLUTION``),
then its autograded test cell: visible checks first, hidden ones between
``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``. The checks live in
:mod:`bplib.testing`.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"


def _src(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def _meta(grade_id: str, *, solution=False, grade=False, locked=False, points=None) -> dict:
    nb = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
          "solution": solution}
    if points is not None:
        nb["points"] = points
    return {"nbgrader": nb}


def md(text: str, grade_id: str | None = None):
    cell = nbformat.v4.new_markdown_cell(_src(text))
    if grade_id:
        cell.metadata = _meta(grade_id, locked=True)
    return cell


def code(text: str):
    return nbformat.v4.new_code_cell(_src(text))


def setup(text: str, grade_id: str = "setup"):
    cell = nbformat.v4.new_code_cell(_src(text))
    cell.metadata = _meta(grade_id, locked=True)
    return cell


def solution(grade_id: str, text: str):
    cell = nbformat.v4.new_code_cell(_src(text))
    cell.metadata = _meta(grade_id, solution=True)
    return cell


def _random_checks_first(visible: str) -> str:
    """Put the one-line ``check_*`` calls right after the imports, before the hand-worked case.

    They diagnose a mistake in words (sign, factor, transpose, a known slip), which a
    one-entry hand-worked case cannot.
    """
    lines = _src(visible).splitlines()
    is_check = [bool(re.match(r"check_(?!value)\w+\(.*\)$", ln)) for ln in lines]
    checks = [ln for ln, c in zip(lines, is_check, strict=True) if c]
    rest = [ln for ln, c in zip(lines, is_check, strict=True) if not c]
    head = 1 if rest and rest[0].startswith("from bplib.testing") else 0
    body = rest[:head] + ([""] if head else []) + checks + rest[head:]
    return "\n".join(body).replace("\n\n\n", "\n\n")


def tests(grade_id: str, points: int, visible: str, hidden: str):
    body = _random_checks_first(visible) + "\n\n### BEGIN HIDDEN TESTS\n" + _src(hidden) + "\n### END HIDDEN TESTS"
    cell = nbformat.v4.new_code_cell(body)
    cell.metadata = _meta(grade_id, grade=True, locked=True, points=points)
    return cell


GRADING_NOTE = """
    **How this notebook is graded.** Each function has its own test cell and its own
    points, so one broken function never costs the points of another. The visible tests
    check shapes and one small case you can work out by hand; the grader adds hidden tests
    on random inputs you have not seen (several seeds, square and non-square shapes,
    large values). When a check fails it says in words what is wrong. Keep each function
    pure: do not change the arrays you are given.
"""


# --------------------------------------------------------------------------- ex01


def ex01() -> list:
    return [
        md("""
            # Exercise 1: the perceptron rule, and why it fails on XOR

            The **perceptron** (感知机) of Rosenblatt (1958) is one artificial neuron with a
            threshold. It reads an input $x$ of $D$ numbers, forms the weighted sum with its
            **weights** (权重) $w$ and **bias** (偏置) $b$, and fires when the sum is not negative:

            $$\\hat y = \\begin{cases} 1 & \\text{if } x \\cdot w + b \\ge 0 \\\\
            0 & \\text{otherwise.} \\end{cases}$$

            In this exercise you write its learning rule, train it on the logic gates AND and
            OR, and watch it never settle on XOR.
        """, "intro"),
        md(GRADING_NOTE, "grading"),
        setup("""
            import numpy as np
        """),
        md("""
            ## 1. One step of the rule

            The perceptron learns from one example $(x, y)$ at a time, $y \\in \\{0, 1\\}$.
            It first predicts $\\hat y$, then moves its weights by the error $y - \\hat y$
            times the input, scaled by the **learning rate** (学习率) $\\eta$:

            $$w \\leftarrow w + \\eta\\,(y - \\hat y)\\,x, \\qquad
            b \\leftarrow b + \\eta\\,(y - \\hat y).$$

            When the prediction is right, $y - \\hat y = 0$ and nothing changes. When it says 0
            for a positive example, $w$ moves towards $x$; when it says 1 for a negative one,
            away from it.

            Write `perceptron_update(w, b, x, y, lr)` returning the new `(w, b)`. Return a new
            array; do not change `w` in place.
        """),
        solution("perceptron_update", """
            def perceptron_update(w, b, x, y, lr):
                \"\"\"One step of the perceptron rule on one example.

                Parameters
                ----------
                w : ndarray, shape (D,)   weights
                b : float                 bias
                x : ndarray, shape (D,)   one input
                y : int, 0 or 1           its target
                lr : float                learning rate

                Returns
                -------
                (w, b) after the step: y_hat = 1 if x . w + b >= 0 else 0;
                w + lr * (y - y_hat) * x and b + lr * (y - y_hat).
                \"\"\"
                ### BEGIN SOLUTION
                y_hat = 1 if x @ w + b >= 0 else 0
                err = y - y_hat
                return w + lr * err * x, b + lr * err
                ### END SOLUTION
        """),
        tests("test_perceptron_update", 2, """
            from bplib.testing import check_perceptron_update, check_value

            # A missed positive example: x . w + b = -1 < 0, so y_hat = 0 but y = 1.
            w, b = perceptron_update(np.array([0.0, -1.0]), 0.0, np.array([1.0, 1.0]), 1, 0.5)
            check_value(w, [0.5, -0.5], "the new w", "perceptron_update")
            check_value(b, 0.5, "the new b", "perceptron_update")
            # A correctly classified example changes nothing.
            w, b = perceptron_update(np.array([1.0, 1.0]), 0.0, np.array([1.0, 1.0]), 1, 0.5)
            check_value(w, [1.0, 1.0], "the new w", "perceptron_update")
            check_value(b, 0.0, "the new b", "perceptron_update")
            check_perceptron_update(perceptron_update, D=2, seed=0)
        """, """
            for seed in range(1, 4):
                check_perceptron_update(perceptron_update, D=2, seed=seed)
                check_perceptron_update(perceptron_update, D=5, seed=seed)
        """),
        md("""
            ## 2. Training until no mistake is left

            An **epoch** (轮次) is one pass over all $N$ examples, in the order given. Training
            starts from $w = 0$, $b = 0$ and counts, in each epoch, the examples on which the
            perceptron was wrong (before its update). It stops after the first epoch with no
            mistake, or after `max_epochs` epochs.

            Write `train_perceptron(X, y, lr, max_epochs)` returning `(w, b, mistakes)`, where
            `mistakes` is the list of counts, one per epoch run. You may call your
            `perceptron_update`; the test grades `train_perceptron` on its own results.
        """),
        solution("train_perceptron", """
            def train_perceptron(X, y, lr=1.0, max_epochs=100):
                \"\"\"Train a perceptron from w = 0, b = 0 with the perceptron rule.

                Parameters
                ----------
                X : ndarray, shape (N, D)   inputs, one per row
                y : ndarray, shape (N,)     targets, 0 or 1
                lr : float                  learning rate
                max_epochs : int            the most passes over the data

                Returns
                -------
                w : ndarray, shape (D,)
                b : float
                mistakes : list of int, the number of mistakes in each epoch run; training
                    stops after the first epoch whose count is 0.
                \"\"\"
                ### BEGIN SOLUTION
                w, b = np.zeros(X.shape[1]), 0.0
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
                return w, b, mistakes
                ### END SOLUTION
        """),
        tests("test_train_perceptron", 3, """
            from bplib.testing import check_train_perceptron

            X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
            w, b, mistakes = train_perceptron(X, np.array([0, 0, 0, 1]), 1.0, 20)
            assert np.shape(w) == (2,), f"w has shape {np.shape(w)}; expected (2,)"
            assert mistakes[-1] == 0, f"on AND the last epoch must make no mistake: {mistakes}"
            check_train_perceptron(train_perceptron, "and")
            check_train_perceptron(train_perceptron, "xor")
        """, """
            for gate in ("or", "nand", "and", "xor"):
                check_train_perceptron(train_perceptron, gate, max_epochs=7)
                check_train_perceptron(train_perceptron, gate, max_epochs=30)
        """),
        md("""
            ## 3. Why XOR defeats it

            Run the next cell: on AND the mistakes fall to zero; on XOR they never do.
        """),
        code("""
            X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
            for name, y in [("AND", [0, 0, 0, 1]), ("OR", [0, 1, 1, 1]), ("XOR", [0, 1, 1, 0])]:
                w, b, mistakes = train_perceptron(X, np.array(y), 1.0, 12)
                print(f"{name:>3}: mistakes per epoch {mistakes}")
        """),
        md("""
            The perceptron can only draw a straight line $x \\cdot w + b = 0$ between the
            two classes: it learns exactly the **linearly separable** (线性可分) problems, and
            on those the rule is guaranteed to stop (Novikoff's convergence theorem, 1962).
            XOR is not one of them. Suppose some $w_1, w_2, b$ did separate it:

            - $(0,0) \\mapsto 0$ needs $b < 0$;
            - $(0,1) \\mapsto 1$ and $(1,0) \\mapsto 1$ need $w_2 + b \\ge 0$ and $w_1 + b \\ge 0$;
            - $(1,1) \\mapsto 0$ needs $w_1 + w_2 + b < 0$.

            Adding the middle two gives $w_1 + w_2 + b \\ge -b > 0$, which contradicts the last.
            So every epoch makes at least one mistake, and the weights cycle for ever. Minsky
            and Papert (1969) made this limit famous. A hidden layer removes it: XOR is
            "OR and not AND", two lines combined by a second unit, and backpropagation is how
            such a network learns the weights of the hidden layer (chapter 1).
        """),
    ]


# --------------------------------------------------------------------------- ex02


def ex02() -> list:
    return [
        md("""
            # Exercise 2: the forward pass

            The **forward pass** (前向传播) computes a network's output layer by layer. The
            course stores a **batch** (批量) of $N$ examples as the rows of a matrix
            $x$ of shape $(N, D)$, so a layer with weights $W$ of shape $(D, M)$ and bias $b$
            of shape $(M,)$ computes $x W + b$ of shape $(N, M)$ for the whole batch at once.

            Every forward function returns `(out, cache)`: the output, and what the
            backward pass (exercise 4) will need. You write `linear_forward`, `relu_forward`,
            `sigmoid_forward` and a two-layer network's forward pass.
        """, "intro"),
        md(GRADING_NOTE, "grading"),
        setup("""
            import numpy as np
        """),
        md("""
            ## 1. The linear layer

            $$\\text{out} = x W + b, \\qquad x: (N, D),\\; W: (D, M),\\; b: (M,),\\;
            \\text{out}: (N, M).$$

            NumPy **broadcasting** (广播) adds $b$ to every row. The cache is the tuple
            `(x, W, b)`.
        """),
        solution("linear_forward", """
            def linear_forward(x, W, b):
                \"\"\"Affine layer out = x @ W + b.

                Parameters
                ----------
                x : ndarray, shape (N, D)
                W : ndarray, shape (D, M)
                b : ndarray, shape (M,)

                Returns
                -------
                out : ndarray, shape (N, M)
                cache : tuple (x, W, b)
                \"\"\"
                ### BEGIN SOLUTION
                return x @ W + b, (x, W, b)
                ### END SOLUTION
        """),
        tests("test_linear_forward", 2, """
            from bplib.testing import check_linear_forward, check_value

            x = np.array([[1.0, 2.0]])
            W = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
            b = np.array([0.5, 0.0, 1.0])
            out, cache = linear_forward(x, W, b)
            assert np.shape(out) == (1, 3), f"out has shape {np.shape(out)}; expected (N, M) = (1, 3)"
            check_value(out, [[5.5, 2.0, 0.0]], "out", "linear_forward")
            check_linear_forward(linear_forward, N=4, D=3, M=5, seed=0)
        """, """
            for seed in range(1, 4):
                check_linear_forward(linear_forward, N=5, D=3, M=4, seed=seed)
                check_linear_forward(linear_forward, N=3, D=3, M=3, seed=seed)
                check_linear_forward(linear_forward, N=1, D=6, M=2, seed=seed)
        """),
        md("""
            ## 2. Activation functions

            Between two linear layers sits a non-linear **activation function** (激活函数),
            applied to every entry; without it two layers collapse into one linear map.

            The **ReLU** (rectified linear unit, 线性整流函数): $\\mathrm{relu}(x) = \\max(0, x)$.
            Its cache is `x`.
        """),
        solution("relu_forward", """
            def relu_forward(x):
                \"\"\"ReLU, out = max(0, x) entry by entry.

                Parameters
                ----------
                x : ndarray, any shape

                Returns
                -------
                out : ndarray, the shape of x
                cache : x
                \"\"\"
                ### BEGIN SOLUTION
                return np.maximum(x, 0), x
                ### END SOLUTION
        """),
        tests("test_relu_forward", 1, """
            from bplib.testing import check_relu_forward, check_value

            out, cache = relu_forward(np.array([[-2.0, 0.0, 3.0]]))
            check_value(out, [[0.0, 0.0, 3.0]], "out", "relu_forward")
            check_relu_forward(relu_forward, shape=(4, 5), seed=0)
        """, """
            for seed in range(1, 4):
                check_relu_forward(relu_forward, shape=(3, 3), seed=seed)
                check_relu_forward(relu_forward, shape=(6, 2), seed=seed)
        """),
        md("""
            The **sigmoid** (S 型函数) squashes any number into $(0, 1)$:

            $$\\sigma(x) = \\frac{1}{1 + e^{-x}}.$$

            Written like that it is not **numerically stable** (数值稳定): for $x = -1000$,
            $e^{1000}$ overflows. Use the equal form that only ever exponentiates a
            non-positive number, with $z = e^{-|x|} \\in (0, 1]$:

            $$\\sigma(x) = \\frac{1}{1 + z} \\text{ if } x \\ge 0, \\qquad
            \\sigma(x) = \\frac{z}{1 + z} \\text{ if } x < 0.$$

            (`np.where` evaluates both branches, so compute `z` first.) The cache is `out`,
            because the derivative is $\\sigma'(x) = \\sigma(x)(1 - \\sigma(x))$. The grader runs
            your function with numpy's overflow warnings turned into errors.
        """),
        solution("sigmoid_forward", """
            def sigmoid_forward(x):
                \"\"\"Sigmoid 1 / (1 + exp(-x)), stable for any x.

                Parameters
                ----------
                x : ndarray, any shape

                Returns
                -------
                out : ndarray, the shape of x, values in [0, 1]
                cache : out
                \"\"\"
                ### BEGIN SOLUTION
                z = np.exp(-np.abs(x))
                out = np.where(x >= 0, 1 / (1 + z), z / (1 + z))
                return out, out
                ### END SOLUTION
        """),
        tests("test_sigmoid_forward", 2, """
            from bplib.testing import check_sigmoid_forward, check_value

            out, cache = sigmoid_forward(np.array([[0.0, np.log(3.0)]]))
            check_value(out, [[0.5, 0.75]], "out", "sigmoid_forward")
            check_sigmoid_forward(sigmoid_forward, shape=(4, 5), seed=0)
            check_sigmoid_forward(sigmoid_forward, shape=(2, 3), seed=0, scale=1000.0)
        """, """
            for seed in range(1, 4):
                check_sigmoid_forward(sigmoid_forward, shape=(3, 3), seed=seed)
                check_sigmoid_forward(sigmoid_forward, shape=(5, 2), seed=seed, scale=1000.0)
        """),
        md("""
            ## 3. A two-layer network

            A two-layer network with a ReLU **hidden layer** (隐藏层) of $H$ units and $C$
            outputs computes

            $$h = \\mathrm{relu}(X W_1 + b_1), \\qquad \\text{scores} = h W_2 + b_2,$$

            with $W_1: (D, H)$, $b_1: (H,)$, $W_2: (H, C)$, $b_2: (C,)$ in a dict `params`
            with keys `"W1" "b1" "W2" "b2"`. The **scores** (分数), also called logits, have
            shape $(N, C)$; exercise 3 turns them into a loss. Use your functions above; the
            test grades `two_layer_forward` on its own output, so make their tests pass first.
        """),
        solution("two_layer_forward", """
            def two_layer_forward(params, X):
                \"\"\"Scores of a two-layer network relu(X @ W1 + b1) @ W2 + b2.

                Parameters
                ----------
                params : dict with W1 (D, H), b1 (H,), W2 (H, C), b2 (C,)
                X : ndarray, shape (N, D)

                Returns
                -------
                scores : ndarray, shape (N, C)
                \"\"\"
                ### BEGIN SOLUTION
                a, _ = linear_forward(X, params["W1"], params["b1"])
                h, _ = relu_forward(a)
                scores, _ = linear_forward(h, params["W2"], params["b2"])
                return scores
                ### END SOLUTION
        """),
        tests("test_two_layer_forward", 2, """
            from bplib.testing import check_two_layer_forward, check_value

            params = {"W1": np.array([[1.0, -1.0]]), "b1": np.array([0.0, 0.0]),
                      "W2": np.array([[2.0], [3.0]]), "b2": np.array([1.0])}
            scores = two_layer_forward(params, np.array([[2.0], [-1.0]]))
            check_value(scores, [[5.0], [4.0]], "scores", "two_layer_forward")
            check_two_layer_forward(two_layer_forward, N=4, D=3, H=6, C=2, seed=0)
        """, """
            for seed in range(1, 4):
                check_two_layer_forward(two_layer_forward, N=5, D=4, H=7, C=3, seed=seed)
                check_two_layer_forward(two_layer_forward, N=4, D=4, H=4, C=4, seed=seed)
        """),
    ]


# --------------------------------------------------------------------------- ex03


def ex03() -> list:
    return [
        md("""
            # Exercise 3: measuring the error

            A **loss function** (损失函数) turns the network's output and the targets into one
            number to make small. Here every loss returns `(loss, grad)`: the mean over the
            batch of $N$ examples, and its **gradient** (梯度) with respect to the network's
            output, which is where the backward pass of exercise 4 starts.

            The grader compares your loss with its own, and your gradient with a numerical
            gradient it computes by central differences,
            $\\frac{\\partial L}{\\partial z_i} \\approx \\frac{L(z + h e_i) - L(z - h e_i)}{2h}$.
        """, "intro"),
        md(GRADING_NOTE, "grading"),
        setup("""
            import numpy as np
            from bplib import sigmoid  # stable: no overflow for any x
        """),
        md("""
            ## 1. Mean squared error

            For predictions $y$ and targets $t$ of the same shape, $(N,)$ or $(N, K)$, the
            **mean squared error** (均方误差) of the course keeps the conventional $\\tfrac12$:

            $$L = \\frac{1}{2N} \\sum_{i, k} (y_{ik} - t_{ik})^2, \\qquad
            \\frac{\\partial L}{\\partial y} = \\frac{y - t}{N}.$$

            $N$ is `y.shape[0]`, the number of examples, not the number of entries.
        """),
        solution("mse_loss", """
            def mse_loss(y, t):
                \"\"\"Squared error with the 1/2, averaged over the batch.

                Parameters
                ----------
                y : ndarray, shape (N,) or (N, K)   predictions
                t : ndarray, the shape of y         targets

                Returns
                -------
                loss : float, sum((y - t)**2) / (2 N)
                dy : ndarray, the shape of y, (y - t) / N
                \"\"\"
                ### BEGIN SOLUTION
                n = y.shape[0]
                diff = y - t
                return float(np.sum(diff**2) / (2 * n)), diff / n
                ### END SOLUTION
        """),
        tests("test_mse_loss", 2, """
            from bplib.testing import check_mse_loss, check_value

            loss, dy = mse_loss(np.array([[1.0, 2.0], [0.0, 0.0]]), np.zeros((2, 2)))
            check_value(loss, 1.25, "the loss", "mse_loss")
            check_value(dy, [[0.5, 1.0], [0.0, 0.0]], "dy", "mse_loss")
            check_mse_loss(mse_loss, shape=(5, 3), seed=0)
        """, """
            for seed in range(1, 4):
                check_mse_loss(mse_loss, shape=(4, 2), seed=seed)
                check_mse_loss(mse_loss, shape=(3, 3), seed=seed)
                check_mse_loss(mse_loss, shape=(6,), seed=seed)
        """),
        md("""
            ## 2. Softmax cross-entropy

            For $C$ classes the network outputs **logits** (对数几率) $z$ of shape $(N, C)$;
            the **softmax** (归一化指数函数) turns each row into probabilities,
            $p_{ic} = e^{z_{ic}} / \\sum_j e^{z_{ij}}$. With integer labels $y_i$ the
            **cross-entropy** (交叉熵) is the mean negative log-probability of the true class:

            $$L = \\frac1N \\sum_i \\Big( \\log \\sum_j e^{z_{ij}} - z_{i, y_i} \\Big), \\qquad
            \\frac{\\partial L}{\\partial z} = \\frac{p - \\mathrm{onehot}(y)}{N}.$$

            For stability subtract each row's maximum $m_i$ first: $\\log \\sum_j e^{z_{ij}} =
            m_i + \\log \\sum_j e^{z_{ij} - m_i}$ never overflows, and never takes $\\log 0$.
            The grader tries logits of $\\pm 1000$.
        """),
        solution("softmax_cross_entropy", """
            def softmax_cross_entropy(logits, labels):
                \"\"\"Softmax then cross-entropy with integer labels, averaged over the batch.

                Parameters
                ----------
                logits : ndarray, shape (N, C)
                labels : ndarray of int, shape (N,), values in 0..C-1

                Returns
                -------
                loss : float
                dlogits : ndarray, shape (N, C), (softmax(logits) - onehot(labels)) / N
                \"\"\"
                ### BEGIN SOLUTION
                n = logits.shape[0]
                shifted = logits - logits.max(axis=1, keepdims=True)
                log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
                rows = np.arange(n)
                loss = -log_p[rows, labels].sum() / n
                dlogits = np.exp(log_p)
                dlogits[rows, labels] -= 1
                return float(loss), dlogits / n
                ### END SOLUTION
        """),
        tests("test_softmax_cross_entropy", 3, """
            from bplib.testing import check_softmax_cross_entropy, check_value

            # Two equal logits: p = (1/2, 1/2), so the loss is log 2.
            loss, dz = softmax_cross_entropy(np.array([[0.0, 0.0]]), np.array([0]))
            check_value(loss, np.log(2.0), "the loss", "softmax_cross_entropy")
            check_value(dz, [[-0.5, 0.5]], "dlogits", "softmax_cross_entropy")
            check_softmax_cross_entropy(softmax_cross_entropy, N=5, C=3, seed=0)
        """, """
            for seed in range(1, 4):
                check_softmax_cross_entropy(softmax_cross_entropy, N=4, C=6, seed=seed)
                check_softmax_cross_entropy(softmax_cross_entropy, N=3, C=3, seed=seed)
                check_softmax_cross_entropy(softmax_cross_entropy, N=5, C=4, seed=seed,
                                            scale=1000.0)
        """),
        md("""
            ## 3. Binary cross-entropy on logits

            For two classes one logit per example is enough: $s = \\sigma(z)$ is the
            probability of class 1 and, with targets $t \\in \\{0, 1\\}$,

            $$L = -\\frac1N \\sum_i \\big( t_i \\log s_i + (1 - t_i) \\log(1 - s_i) \\big), \\qquad
            \\frac{\\partial L}{\\partial z} = \\frac{\\sigma(z) - t}{N}.$$

            Taking $\\log \\sigma(z)$ of a computed $\\sigma(z)$ fails for large $|z|$
            ($\\sigma(-1000)$ is 0 in floating point). The same loss, written stably:

            $$L = \\frac1N \\sum_i \\big( \\max(z_i, 0) - z_i t_i + \\log(1 + e^{-|z_i|}) \\big).$$

            `logits` has shape $(N,)$ or $(N, 1)$ and `t` the same shape. For the gradient
            you need a stable sigmoid: `sigmoid` from `bplib` is imported for you above.
        """),
        solution("binary_cross_entropy", """
            def binary_cross_entropy(logits, t):
                \"\"\"Sigmoid then binary cross-entropy, on logits, averaged over the batch.

                Parameters
                ----------
                logits : ndarray, shape (N,) or (N, 1)
                t : ndarray, the shape of logits, values 0 or 1

                Returns
                -------
                loss : float
                dlogits : ndarray, the shape of logits, (sigmoid(logits) - t) / N
                \"\"\"
                ### BEGIN SOLUTION
                n = logits.shape[0]
                z = logits
                loss = np.sum(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))) / n
                return float(loss), (sigmoid(z) - t) / n
                ### END SOLUTION
        """),
        tests("test_binary_cross_entropy", 3, """
            from bplib.testing import check_binary_cross_entropy, check_value

            loss, dz = binary_cross_entropy(np.array([0.0, 0.0]), np.array([1.0, 0.0]))
            check_value(loss, np.log(2.0), "the loss", "binary_cross_entropy")
            check_value(dz, [-0.25, 0.25], "dlogits", "binary_cross_entropy")
            check_binary_cross_entropy(binary_cross_entropy, shape=(6,), seed=0)
        """, """
            for seed in range(1, 4):
                check_binary_cross_entropy(binary_cross_entropy, shape=(5,), seed=seed)
                check_binary_cross_entropy(binary_cross_entropy, shape=(4, 1), seed=seed)
                check_binary_cross_entropy(binary_cross_entropy, shape=(7,), seed=seed,
                                           scale=1000.0)
        """),
    ]


# --------------------------------------------------------------------------- ex04


def ex04() -> list:
    return [
        md("""
            # Exercise 4: the backward pass

            **Backpropagation** (反向传播) applies the **chain rule** (链式法则) layer by layer,
            from the loss back to the inputs. Each layer's backward function receives the
            **upstream gradient** (上游梯度) `dout` $= \\partial L / \\partial\\,\\text{out}$ and the
            cache its forward function saved, and returns the gradient of the loss with
            respect to each input of the layer. A gradient always has the shape of the thing
            it is the gradient of: `dW` has the shape of `W`.

            The forward functions are given (from `bplib`, they match exercise 2). The
            grader compares each gradient you return with a numerical one,
            $\\sum_k \\text{dout}_k \\, \\frac{\\text{out}_k(x + h e_i) - \\text{out}_k(x - h e_i)}{2h}$,
            on random inputs, including square shapes where a transposed matrix has the
            right shape but the wrong values.
        """, "intro"),
        md(GRADING_NOTE, "grading"),
        setup("""
            import numpy as np
            from bplib import (linear_forward, relu_forward, sigmoid_forward,
                               softmax_cross_entropy, tanh_forward)
        """),
        md("""
            ## 1. The linear layer

            With $\\text{out} = x W + b$ and $\\delta = $ `dout` of shape $(N, M)$:

            $$dx = \\delta\\, W^\\top \\;(N, D), \\qquad dW = x^\\top \\delta \\;(D, M), \\qquad
            db = \\textstyle\\sum_{n} \\delta_{n,:} \\;(M,).$$

            $b$ was added to every row, so its gradient sums over the batch. Check the shapes
            first: they leave only one way to multiply.
        """),
        solution("linear_backward", """
            def linear_backward(dout, cache):
                \"\"\"Backward pass of out = x @ W + b.

                Parameters
                ----------
                dout : ndarray, shape (N, M)   upstream gradient dL/dout
                cache : tuple (x, W, b) with x (N, D), W (D, M), b (M,)

                Returns
                -------
                dx : ndarray, shape (N, D)
                dW : ndarray, shape (D, M)
                db : ndarray, shape (M,)
                \"\"\"
                ### BEGIN SOLUTION
                x, W, b = cache
                return dout @ W.T, x.T @ dout, dout.sum(axis=0)
                ### END SOLUTION
        """),
        tests("test_linear_backward", 3, """
            from bplib.testing import check_linear_backward, check_value

            x = np.array([[1.0, 2.0]])
            W = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
            b = np.zeros(3)
            dx, dW, db = linear_backward(np.array([[1.0, 0.0, 2.0]]), (x, W, b))
            check_value(dx, [[-1.0, 2.0]], "dx", "linear_backward")
            check_value(dW, [[1.0, 0.0, 2.0], [2.0, 0.0, 4.0]], "dW", "linear_backward")
            check_value(db, [1.0, 0.0, 2.0], "db", "linear_backward")
            check_linear_backward(linear_backward, N=4, D=3, M=5, seed=0)
        """, """
            for seed in range(1, 4):
                check_linear_backward(linear_backward, N=5, D=3, M=4, seed=seed)
                check_linear_backward(linear_backward, N=3, D=3, M=3, seed=seed)
                check_linear_backward(linear_backward, N=2, D=4, M=4, seed=seed)
        """),
        md("""
            ## 2. Activations

            An activation acts entry by entry, so its backward pass multiplies `dout` entry
            by entry by the derivative:

            | forward | cache | backward |
            |---|---|---|
            | $\\max(0, x)$ | `x` | $dx = \\text{dout} \\cdot [x > 0]$ (take the derivative at 0 to be 0) |
            | $\\sigma(x)$ | `out` | $dx = \\text{dout} \\cdot \\text{out}\\,(1 - \\text{out})$ |
            | $\\tanh(x)$ | `out` | $dx = \\text{dout} \\cdot (1 - \\text{out}^2)$ |

            Note what the cache is: for the sigmoid and tanh it is the *output*, not `x`.
            Do not write into `dout` (`dout[x <= 0] = 0` changes the caller's array).
        """),
        solution("relu_backward", """
            def relu_backward(dout, cache):
                \"\"\"Backward pass of ReLU.

                Parameters
                ----------
                dout : ndarray, any shape   upstream gradient
                cache : ndarray x, the shape of dout

                Returns
                -------
                dx : ndarray, the shape of dout, dout where x > 0 and 0 elsewhere
                \"\"\"
                ### BEGIN SOLUTION
                x = cache
                return dout * (x > 0)
                ### END SOLUTION
        """),
        tests("test_relu_backward", 2, """
            from bplib.testing import check_relu_backward, check_value

            dx = relu_backward(np.array([[1.0, 2.0, 3.0]]), np.array([[-1.0, 0.0, 4.0]]))
            check_value(dx, [[0.0, 0.0, 3.0]], "dx", "relu_backward")
            check_relu_backward(relu_backward, shape=(4, 5), seed=0)
        """, """
            for seed in range(1, 4):
                check_relu_backward(relu_backward, shape=(3, 3), seed=seed)
                check_relu_backward(relu_backward, shape=(2, 7), seed=seed)
        """),
        solution("sigmoid_backward", """
            def sigmoid_backward(dout, cache):
                \"\"\"Backward pass of the sigmoid.

                Parameters
                ----------
                dout : ndarray, any shape   upstream gradient
                cache : ndarray out = sigmoid(x), the shape of dout

                Returns
                -------
                dx : ndarray, dout * out * (1 - out)
                \"\"\"
                ### BEGIN SOLUTION
                out = cache
                return dout * out * (1 - out)
                ### END SOLUTION
        """),
        tests("test_sigmoid_backward", 2, """
            from bplib.testing import check_sigmoid_backward, check_value

            out, cache = sigmoid_forward(np.array([[0.0]]))
            check_value(sigmoid_backward(np.array([[2.0]]), cache), [[0.5]], "dx",
                        "sigmoid_backward")
            check_sigmoid_backward(sigmoid_backward, shape=(4, 5), seed=0)
        """, """
            for seed in range(1, 4):
                check_sigmoid_backward(sigmoid_backward, shape=(3, 3), seed=seed)
                check_sigmoid_backward(sigmoid_backward, shape=(6, 2), seed=seed)
        """),
        solution("tanh_backward", """
            def tanh_backward(dout, cache):
                \"\"\"Backward pass of tanh.

                Parameters
                ----------
                dout : ndarray, any shape   upstream gradient
                cache : ndarray out = tanh(x), the shape of dout

                Returns
                -------
                dx : ndarray, dout * (1 - out**2)
                \"\"\"
                ### BEGIN SOLUTION
                out = cache
                return dout * (1 - out**2)
                ### END SOLUTION
        """),
        tests("test_tanh_backward", 2, """
            from bplib.testing import check_tanh_backward, check_value

            out, cache = tanh_forward(np.array([[0.0, 0.5]]))
            check_value(tanh_backward(np.array([[3.0, 1.0]]), cache),
                        [[3.0, 1 - np.tanh(0.5) ** 2]], "dx", "tanh_backward")
            check_tanh_backward(tanh_backward, shape=(4, 5), seed=0)
        """, """
            for seed in range(1, 4):
                check_tanh_backward(tanh_backward, shape=(3, 3), seed=seed)
                check_tanh_backward(tanh_backward, shape=(5, 1), seed=seed)
        """),
        md("""
            ## 3. A whole network: loss and gradients

            Put the pieces together for the network of exercise 2 with a softmax
            cross-entropy loss (exercise 3): forward through
            linear → ReLU → linear → loss, keeping each cache, then backward in the
            reverse order, starting from `dlogits`.

            `two_layer_net(params, X, y)` returns `(loss, grads)`, where `grads` is a dict
            with the same keys as `params` (`"W1" "b1" "W2" "b2"`). `softmax_cross_entropy`
            is given. You may use your backward functions above; the test grades
            `two_layer_net` on its own output, so make their tests pass first.
        """),
        solution("two_layer_net", """
            def two_layer_net(params, X, y):
                \"\"\"Loss and gradients of a two-layer ReLU network with softmax cross-entropy.

                Parameters
                ----------
                params : dict with W1 (D, H), b1 (H,), W2 (H, C), b2 (C,)
                X : ndarray, shape (N, D)
                y : ndarray of int, shape (N,), labels in 0..C-1

                Returns
                -------
                loss : float
                grads : dict with keys W1, b1, W2, b2, each the shape of its parameter
                \"\"\"
                ### BEGIN SOLUTION
                a, cache1 = linear_forward(X, params["W1"], params["b1"])
                h, cache_relu = relu_forward(a)
                scores, cache2 = linear_forward(h, params["W2"], params["b2"])
                loss, dscores = softmax_cross_entropy(scores, y)
                dh, dW2, db2 = linear_backward(dscores, cache2)
                da = relu_backward(dh, cache_relu)
                _, dW1, db1 = linear_backward(da, cache1)
                return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
                ### END SOLUTION
        """),
        tests("test_two_layer_net", 4, """
            from bplib.testing import check_two_layer_net

            rng = np.random.default_rng(0)
            params = {"W1": rng.standard_normal((3, 4)), "b1": np.zeros(4),
                      "W2": rng.standard_normal((4, 2)), "b2": np.zeros(2)}
            loss, grads = two_layer_net(params, rng.standard_normal((5, 3)), np.array([0, 1, 1, 0, 1]))
            assert np.ndim(loss) == 0, f"loss must be one number, got shape {np.shape(loss)}"
            for key in ("W1", "b1", "W2", "b2"):
                assert np.shape(grads[key]) == params[key].shape, (
                    f"grads[{key!r}] has shape {np.shape(grads[key])} "
                    f"but {key} has shape {params[key].shape}")
            check_two_layer_net(two_layer_net, N=5, D=4, H=6, C=3, seed=0)
        """, """
            for seed in range(1, 4):
                check_two_layer_net(two_layer_net, N=6, D=3, H=5, C=4, seed=seed)
                check_two_layer_net(two_layer_net, N=4, D=4, H=4, C=4, seed=seed)
        """),
        md("""
            ## Check your own gradients

            `bplib.check_gradients` is the tool the chapters use: it compares analytic
            gradients with numerical ones and prints the worst entry of each parameter.
        """),
        code("""
            from bplib import check_gradients

            rng = np.random.default_rng(1)
            params = {"W1": rng.standard_normal((3, 5)), "b1": 0.1 * rng.standard_normal(5),
                      "W2": rng.standard_normal((5, 2)), "b2": 0.1 * rng.standard_normal(2)}
            X, y = rng.standard_normal((4, 3)), np.array([0, 1, 1, 0])
            loss, grads = two_layer_net(params, X, y)
            print(check_gradients(lambda: two_layer_net(params, X, y)[0], params, grads))
        """),
    ]


# --------------------------------------------------------------------------- ex05


def ex05() -> list:
    return [
        md("""
            # Exercise 5: updating the weights

            **Gradient descent** (梯度下降) steps against the gradient, $w \\leftarrow w -
            \\eta\\, \\nabla L$. On a mini-batch the gradient is noisy (**stochastic gradient
            descent**, 随机梯度下降, SGD), and along a long narrow valley it zig-zags. You write
            two update rules that do better: momentum and Adam. Each returns new arrays and
            leaves the ones it is given unchanged, so the same function serves any
            parameter.
        """, "intro"),
        md(GRADING_NOTE, "grading"),
        setup("""
            import numpy as np
        """),
        md("""
            ## 1. Momentum

            **Momentum** (动量) keeps a velocity $v$, a decaying sum of past steps, and moves
            along it:

            $$v \\leftarrow \\mu\\, v - \\eta\\, dw, \\qquad w \\leftarrow w + v.$$

            With $\\mu = 0$ it is plain gradient descent. In directions where the gradient
            keeps its sign the steps add up (to about $\\eta / (1 - \\mu)$ times the gradient);
            where it flips, they cancel.
        """),
        solution("sgd_momentum_update", """
            def sgd_momentum_update(w, dw, v, lr, momentum):
                \"\"\"One step of gradient descent with momentum.

                Parameters
                ----------
                w : ndarray     parameters
                dw : ndarray    gradient of the loss, the shape of w
                v : ndarray     velocity, the shape of w
                lr : float      learning rate
                momentum : float, in [0, 1)

                Returns
                -------
                (w, v), new arrays: v = momentum * v - lr * dw, then w = w + v
                \"\"\"
                ### BEGIN SOLUTION
                v = momentum * v - lr * dw
                return w + v, v
                ### END SOLUTION
        """),
        tests("test_sgd_momentum_update", 2, """
            from bplib.testing import check_sgd_momentum_update, check_value

            w, v = sgd_momentum_update(np.array([1.0]), np.array([2.0]), np.array([0.5]), 0.1, 0.9)
            check_value(v, [0.25], "the new v", "sgd_momentum_update")
            check_value(w, [1.25], "the new w", "sgd_momentum_update")
            check_sgd_momentum_update(sgd_momentum_update, shape=(3, 4), seed=0)
        """, """
            for seed in range(1, 4):
                check_sgd_momentum_update(sgd_momentum_update, shape=(5,), seed=seed, steps=3)
                check_sgd_momentum_update(sgd_momentum_update, shape=(3, 3), seed=seed)
        """),
        md("""
            ## 2. Adam

            **Adam** (Kingma and Ba, 2014) keeps two running averages per parameter, of the
            gradient ($m$, the first moment) and of its square ($v$, the second), and scales
            each step by $1/\\sqrt{v}$, so every parameter takes steps of about the size $\\eta$.
            Both averages start at zero and are therefore biased towards zero early on; the
            **bias correction** (偏差修正) divides them by $1 - \\beta^t$, with the step number
            $t$ counting from 1:

            $$m \\leftarrow \\beta_1 m + (1 - \\beta_1)\\, dw, \\qquad
            v \\leftarrow \\beta_2 v + (1 - \\beta_2)\\, dw^2,$$
            $$\\hat m = \\frac{m}{1 - \\beta_1^t}, \\qquad \\hat v = \\frac{v}{1 - \\beta_2^t}, \\qquad
            w \\leftarrow w - \\eta\\, \\frac{\\hat m}{\\sqrt{\\hat v} + \\epsilon}.$$

            Return the new $w$ and the new (uncorrected) $m$ and $v$.
        """),
        solution("adam_update", """
            def adam_update(w, dw, m, v, t, lr, beta1, beta2, eps):
                \"\"\"One step of Adam with bias correction.

                Parameters
                ----------
                w, dw, m, v : ndarrays of one shape   parameters, gradient, first and second moment
                t : int          the step number, 1 for the first step
                lr : float       learning rate
                beta1, beta2 : float   decay rates of m and v, e.g. 0.9 and 0.999
                eps : float      keeps the division finite, e.g. 1e-8

                Returns
                -------
                (w, m, v), new arrays
                \"\"\"
                ### BEGIN SOLUTION
                m = beta1 * m + (1 - beta1) * dw
                v = beta2 * v + (1 - beta2) * dw**2
                m_hat = m / (1 - beta1**t)
                v_hat = v / (1 - beta2**t)
                return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
                ### END SOLUTION
        """),
        tests("test_adam_update", 3, """
            from bplib.testing import check_adam_update, check_value

            # At t = 1 the corrected moments are dw and dw**2: the step is about lr * sign(dw).
            w, m, v = adam_update(np.array([1.0]), np.array([2.0]), np.zeros(1), np.zeros(1),
                                  1, 0.1, 0.9, 0.999, 1e-8)
            check_value(m, [0.2], "the new m", "adam_update")
            check_value(v, [0.004], "the new v", "adam_update")
            check_value(w, [0.9], "the new w", "adam_update")
            check_adam_update(adam_update, shape=(3, 4), seed=0, steps=2)
        """, """
            for seed in range(1, 4):
                check_adam_update(adam_update, shape=(4,), seed=seed, steps=4)
                check_adam_update(adam_update, shape=(3, 3), seed=seed, steps=2)
        """),
        md("""
            ## Try it on a narrow valley

            $L(w) = \\tfrac12 (w_0^2 + 25\\, w_1^2)$ is 25 times steeper along $w_1$ than
            along $w_0$. The cell runs 60 steps of each rule from the same start. Plain SGD
            must keep its learning rate small enough for the steep direction and so crawls
            along the flat one. Which rule wins depends on the learning rates: change them and
            run it again.
        """),
        code("""
            def valley_grad(w):
                return np.array([1.0, 25.0]) * w

            def valley_loss(w):
                return 0.5 * (w[0] ** 2 + 25 * w[1] ** 2)

            start = np.array([-4.0, 1.0])
            w_sgd, w_mom, v = start.copy(), start.copy(), np.zeros(2)
            w_adam, m, s = start.copy(), np.zeros(2), np.zeros(2)
            for t in range(1, 61):
                w_sgd = w_sgd - 0.035 * valley_grad(w_sgd)
                w_mom, v = sgd_momentum_update(w_mom, valley_grad(w_mom), v, 0.035, 0.6)
                w_adam, m, s = adam_update(w_adam, valley_grad(w_adam), m, s, t, 0.3, 0.9, 0.999, 1e-8)
            for name, w in [("SGD", w_sgd), ("momentum", w_mom), ("Adam", w_adam)]:
                print(f"{name:>8}: loss after 60 steps {valley_loss(w):.2e}")
        """),
    ]


EX06_GRADING = """
    **How this notebook is graded.** Each function has its own test cell and its own
    points, so one broken function never costs the points of another: the tests of
    parts 2 to 4 call your function on the course's copy of the pretrained network
    (`pretrained_reference()`), not on yours. The visible tests check the shapes and
    names; the grader adds hidden tests (exact layer sizes and activations, which layers
    are frozen, that frozen weights do not move while the rest trains, and the accuracy
    of your fine-tuning on held-out digits that you have not seen). When a check fails
    it says in words what is wrong. Every cell should finish in a few seconds.
"""


def ex06() -> list:
    return [
        md("""
            # Exercise 6: pretraining and fine-tuning in Keras

            A network trained on one task has learned **features** (特征) in its hidden
            layers: detectors of strokes and loops, for handwritten digits. **Fine-tuning**
            (微调) reuses them for a new task: keep the pretrained hidden layers, put a new
            output layer (a new **head**) on top, **freeze** (冻结) the layers that should
            stay as they are, and train the rest on the few labelled examples of the new task.

            Here the first task is to tell the digits 0 to 4 apart, and the new task is the
            digits 5 to 9, with only 10 labelled images of each. You write four small
            functions:

            1. `build_base_model()`: the network, to a given specification;
            2. `build_finetune_model(base)`: the pretrained hidden layers with a new head;
            3. `freeze_pretrained(model)`: which layers must not train;
            4. `finetune(model, X, y, epochs=30)`: compile and train.

            Keras 3 runs here on the JAX backend, chosen before `keras` is imported.
        """, "intro"),
        md(EX06_GRADING, "grading"),
        setup("""
            import os

            os.environ["KERAS_BACKEND"] = "jax"

            import keras
            import numpy as np

            import bplib

            digits = bplib.load_digits(seed=0)  # standardised 8x8 images, 64 features


            def task(X, y, first):
                \"\"\"The images whose label is first..first+4, relabelled 0..4.\"\"\"
                keep = (y >= first) & (y < first + 5)
                return X[keep].astype("float32"), y[keep] - first


            # Task A: digits 0-4, plenty of labels (pretraining).
            X_a, y_a = task(digits.X_train, digits.y_train, 0)
            X_a_test, y_a_test = task(digits.X_test, digits.y_test, 0)
            # Task B: digits 5-9 (label 0 means the digit 5), only 10 labelled images per class.
            X_b_pool, y_b_pool = task(digits.X_train, digits.y_train, 5)
            few = np.concatenate([np.flatnonzero(y_b_pool == c)[:10] for c in range(5)])
            X_b, y_b = X_b_pool[few], y_b_pool[few]
            X_b_test, y_b_test = task(digits.X_test, digits.y_test, 5)


            def accuracy(model, X, y):
                \"\"\"The fraction of rows of X whose largest logit is at the label y.\"\"\"
                return float(np.mean(np.argmax(np.asarray(model(X)), axis=1) == y))


            def snapshot(model):
                \"\"\"Copies of every layer's weights: {layer name: [kernel, bias]}.\"\"\"
                return {layer.name: [np.array(w) for w in layer.get_weights()]
                        for layer in model.layers}


            def pretrained_reference():
                \"\"\"The course's network of part 1, pretrained on digits 0-4 (a fresh copy).\"\"\"
                return keras.saving.load_model("digits04_base.keras")


            print(f"task A: {len(X_a)} training images; task B: {len(X_b)} labelled images, "
                  f"{len(X_b_test)} held out")
        """),
        md("""
            ## 1. The base network

            Build and return a new `keras.Sequential` model with these layers, in this order:

            | layer | Keras | output shape |
            |---|---|---|
            | input | `keras.Input((64,))` | (N, 64) |
            | `hidden1` | `Dense`, 64 units, ReLU | (N, 64) |
            | `hidden2` | `Dense`, 32 units, ReLU | (N, 32) |
            | `head` | `Dense`, 5 units, no activation | (N, 5) |

            Give each `Dense` layer its name with `name="hidden1"` and so on. The head has no
            activation: it outputs **logits** (未归一化的对数概率), and the loss applies the
            softmax (`from_logits=True`), as in chapter 3. Each call must return a new model.
        """),
        solution("build_base_model", """
            def build_base_model():
                \"\"\"A new Sequential network 64 -> hidden1 (64, ReLU) -> hidden2 (32, ReLU) -> head (5).

                Returns
                -------
                keras.Sequential
                    Input (N, 64), output logits (N, 5).
                \"\"\"
                ### BEGIN SOLUTION
                return keras.Sequential([
                    keras.Input((64,)),
                    keras.layers.Dense(64, activation="relu", name="hidden1"),
                    keras.layers.Dense(32, activation="relu", name="hidden2"),
                    keras.layers.Dense(5, name="head"),
                ])
                ### END SOLUTION
        """),
        tests("test_build_base_model", 2, """
            model = build_base_model()
            assert isinstance(model, keras.Model), f"build_base_model returned {type(model).__name__}; expected a keras.Sequential"
            names = [layer.name for layer in model.layers]
            assert names == ["hidden1", "hidden2", "head"], f"the layers are named {names}; expected ['hidden1', 'hidden2', 'head']"
            out = np.asarray(model(X_a[:7]))
            assert out.shape == (7, 5), f"for 7 images of 64 pixels the output has shape {out.shape}; expected (7, 5)"
        """, """
            def _describe(model):
                return [(layer.name, layer.get_config().get("units"), layer.get_config().get("activation"),
                         layer.get_config().get("use_bias")) for layer in model.layers]

            want = [("hidden1", 64, "relu", True), ("hidden2", 32, "relu", True), ("head", 5, "linear", True)]
            got = _describe(model)
            assert got == want, f"the layers (name, units, activation, bias) are {got}; expected {want}"
            assert model.count_params() == 6405, f"the model has {model.count_params()} parameters; expected 64*64+64 + 64*32+32 + 32*5+5 = 6405"
            assert tuple(model.input_shape) == (None, 64), f"the input shape is {model.input_shape}; expected (None, 64)"
            other = build_base_model()
            assert other is not model and other.get_layer("hidden1") is not model.get_layer("hidden1"), "build_base_model returned the same model twice; build a new one on each call"
        """),
        md("""
            ### Pretraining on the digits 0 to 4 (given)

            The next cell trains your network on task A: Adam, the cross-entropy on logits,
            a few epochs. It should reach well over 90% on the held-out digits 0 to 4.
        """),
        code("""
            keras.utils.set_random_seed(0)
            base = build_base_model()
            base.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3),
                         loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            base.fit(X_a, y_a, epochs=5, batch_size=64, verbose=0)
            print(f"held-out accuracy on the digits 0-4: {accuracy(base, X_a_test, y_a_test):.3f}")
        """),
        md("""
            ## 2. A new head on the pretrained layers

            The digits 5 to 9 need a new output layer: the old `head` scores the classes
            0 to 4. Write `build_finetune_model(base)` that returns a new `keras.Sequential`
            made of

            - `keras.Input((64,))`,
            - the layer `hidden1` of `base` itself (`base.get_layer("hidden1")`: the same
              layer object, so it brings its pretrained weights),
            - the layer `hidden2` of `base` itself,
            - a new `Dense` layer of 5 units, no activation, named `"head_b"`.

            Do not change `base`. The tests call your function on `pretrained_reference()`,
            the course's copy of the pretrained network, so that this part is graded on its
            own even if part 1 is not finished.
        """),
        solution("build_finetune_model", """
            def build_finetune_model(base):
                \"\"\"The pretrained hidden layers of ``base`` under a new 5-unit head ``head_b``.

                Parameters
                ----------
                base : keras.Sequential
                    A network with layers ``hidden1``, ``hidden2`` and ``head``.

                Returns
                -------
                keras.Sequential
                    Input (N, 64) -> base's hidden1 -> base's hidden2 -> new head_b, logits (N, 5).
                \"\"\"
                ### BEGIN SOLUTION
                return keras.Sequential([
                    keras.Input((64,)),
                    base.get_layer("hidden1"),
                    base.get_layer("hidden2"),
                    keras.layers.Dense(5, name="head_b"),
                ])
                ### END SOLUTION
        """),
        tests("test_build_finetune_model", 2, """
            ref = pretrained_reference()
            ft = build_finetune_model(ref)
            assert isinstance(ft, keras.Model), f"build_finetune_model returned {type(ft).__name__}; expected a keras.Sequential"
            names = [layer.name for layer in ft.layers]
            assert names == ["hidden1", "hidden2", "head_b"], f"the layers are named {names}; expected ['hidden1', 'hidden2', 'head_b']"
            out = np.asarray(ft(X_b[:3]))
            assert out.shape == (3, 5), f"for 3 images the output has shape {out.shape}; expected (3, 5)"
        """, """
            for name in ("hidden1", "hidden2"):
                assert ft.get_layer(name) is ref.get_layer(name), f"{name} of the new model is not the layer of base: use base.get_layer({name!r}) itself, not a copy or a new layer"
            head = ft.get_layer("head_b")
            assert head is not ref.get_layer("head"), "head_b is the old head of base; make a new Dense layer"
            cfg = head.get_config()
            assert (cfg["units"], cfg["activation"]) == (5, "linear"), f"head_b has {cfg['units']} units and activation {cfg['activation']!r}; expected 5 units and no activation"
            _ref_weights = snapshot(pretrained_reference())
            for name in ("hidden1", "hidden2"):
                for w, w0 in zip(ft.get_layer(name).get_weights(), _ref_weights[name]):
                    assert np.array_equal(w, w0), f"the weights of {name} are not the pretrained ones: reuse the layer, do not re-create or re-initialise it"
            for w, w0 in zip(ref.get_layer("head").get_weights(), _ref_weights["head"]):
                assert np.array_equal(w, w0), "the head of base changed: build_finetune_model must leave base as it is"
            assert np.allclose(np.asarray(ref(X_b[:3])), np.asarray(pretrained_reference()(X_b[:3])), atol=1e-6), "base no longer computes what it did: build_finetune_model must leave base as it is"
        """),
        md("""
            ## 3. Which layers to freeze

            A frozen layer keeps its weights while the rest of the network trains. The usual
            recipe freezes the lowest layers, whose features (here, strokes) are the most
            generic, and trains the layers above them, which combine those features for the
            task at hand. It trains fewer weights from the few labelled images, and the
            frozen layers stay exactly as pretraining left them. Whether it also gives a
            better accuracy is an empirical question: the last cell of this notebook lets you
            measure it.

            Write `freeze_pretrained(model)`: set `trainable = False` on the layer named
            `hidden1` of `model` and `trainable = True` on every other layer; return `model`.
            Keras reads the flags when the model is compiled, so set them before `compile`.
        """),
        solution("freeze_pretrained", """
            def freeze_pretrained(model):
                \"\"\"Freeze the layer ``hidden1`` of ``model``; make every other layer trainable.

                Returns
                -------
                keras.Model
                    ``model`` itself, changed in place.
                \"\"\"
                ### BEGIN SOLUTION
                for layer in model.layers:
                    layer.trainable = layer.name != "hidden1"
                return model
                ### END SOLUTION
        """),
        tests("test_freeze_pretrained", 2, """
            net = pretrained_reference()
            freeze_pretrained(net)
            flags = {layer.name: layer.trainable for layer in net.layers}
            assert flags["hidden1"] is False, f"hidden1.trainable is {flags['hidden1']}; expected False"
            assert flags["head"] is True, f"head.trainable is {flags['head']}; expected True"
        """, """
            assert flags == {"hidden1": False, "hidden2": True, "head": True}, f"the trainable flags are {flags}; expected only hidden1 frozen"
            # On a fine-tuning model whose layers all start frozen, then a short fit.
            _ref = pretrained_reference()
            for _layer in _ref.layers:
                _layer.trainable = False
            keras.utils.set_random_seed(1)
            _ft = keras.Sequential([keras.Input((64,)), _ref.get_layer("hidden1"), _ref.get_layer("hidden2"),
                                    keras.layers.Dense(5, name="head_b", trainable=False)])
            _before = snapshot(_ft)
            freeze_pretrained(_ft)
            _flags = {layer.name: layer.trainable for layer in _ft.layers}
            assert _flags == {"hidden1": False, "hidden2": True, "head_b": True}, f"on a fine-tuning model whose layers were all frozen the flags are {_flags}; expected hidden1 frozen and hidden2, head_b trainable"
            _ft.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            _ft.fit(X_b, y_b, epochs=1, batch_size=25, verbose=0)
            _after = snapshot(_ft)
            assert all(np.array_equal(a, b) for a, b in zip(_after["hidden1"], _before["hidden1"])), "the weights of hidden1 moved during fine-tuning: it is not frozen"
            for _name in ("hidden2", "head_b"):
                assert not np.array_equal(_after[_name][0], _before[_name][0]), f"the weights of {_name} did not move during fine-tuning: it must be trainable"
        """),
        md("""
            ## 4. Fine-tuning

            Write `finetune(model, X, y, epochs=30)`: compile `model` with

            - `keras.optimizers.Adam(learning_rate=0.01)`,
            - the loss `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`,
            - `metrics=["accuracy"]`,

            then train it with `fit` for `epochs` epochs (30 unless the caller says otherwise)
            in batches of 32 (`verbose=0`), and return the `History` that `fit` returns. Compile inside the function: Keras reads the
            `trainable` flags when it compiles.

            The hidden test fine-tunes the course's pretrained network (with `hidden1`
            frozen and a new head) with your function from a fixed seed, and measures the
            accuracy on the 225 held-out images of the digits 5 to 9; it must reach 75%.
        """),
        solution("finetune", """
            def finetune(model, X, y, epochs=30):
                \"\"\"Compile ``model`` (Adam 0.01, cross-entropy on logits, accuracy) and fit it.

                Parameters
                ----------
                model : keras.Model   logits (N, 5)
                X : ndarray, shape (N, 64)
                y : ndarray, shape (N,), integer labels 0..4
                epochs : int, the number of passes over X

                Returns
                -------
                keras.callbacks.History
                    ``epochs`` epochs, batches of 32.
                \"\"\"
                ### BEGIN SOLUTION
                model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
                              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                              metrics=["accuracy"])
                return model.fit(X, y, epochs=epochs, batch_size=32, verbose=0)
                ### END SOLUTION
        """),
        tests("test_finetune", 3, """
            import inspect

            class SpyModel:
                # Records the arguments of compile and fit, bound as Keras would bind them.

                def compile(self, *args, **kwargs):
                    self.compiled = inspect.signature(keras.Model.compile).bind(self, *args, **kwargs).arguments

                def fit(self, *args, **kwargs):
                    self.fitted = inspect.signature(keras.Model.fit).bind(self, *args, **kwargs).arguments
                    self.history = keras.callbacks.History()
                    return self.history

            spy = SpyModel()
            result = finetune(spy, X_b, y_b, epochs=4)
            assert hasattr(spy, "compiled"), "finetune did not call model.compile"
            assert hasattr(spy, "fitted"), "finetune did not call model.fit"
            opt, loss = spy.compiled.get("optimizer"), spy.compiled.get("loss")
            assert isinstance(opt, keras.optimizers.Adam), f"the optimizer is {opt!r}; expected keras.optimizers.Adam(learning_rate=0.01)"
            assert abs(float(opt.learning_rate) - 0.01) < 1e-9, f"the learning rate is {float(opt.learning_rate)}; expected 0.01"
            assert isinstance(loss, keras.losses.SparseCategoricalCrossentropy) and loss.from_logits, f"the loss is {type(loss).__name__} with from_logits={getattr(loss, 'from_logits', None)}; expected SparseCategoricalCrossentropy(from_logits=True): the head outputs logits"
            assert "accuracy" in list(spy.compiled.get("metrics") or []), f"the metrics are {spy.compiled.get('metrics')}; expected ['accuracy']"
            got = {k: spy.fitted.get(k) for k in ("epochs", "batch_size")}
            assert got == {"epochs": 4, "batch_size": 32}, f"fit was called with {got}; expected epochs=4 (the argument) and batch_size=32"
            assert spy.fitted.get("x") is X_b and spy.fitted.get("y") is y_b, "fit must train on the X and y given to finetune"
            assert result is spy.history, "finetune must return the History that fit returns"
        """, """
            _ref = pretrained_reference()
            keras.utils.set_random_seed(0)
            _ft = keras.Sequential([keras.Input((64,)), _ref.get_layer("hidden1"), _ref.get_layer("hidden2"),
                                    keras.layers.Dense(5, name="head_b")])
            _ft.get_layer("hidden1").trainable = False
            _before = snapshot(_ft)
            _history = finetune(_ft, X_b, y_b)
            assert len(_history.history["loss"]) == 30, f"without the argument epochs, finetune trained {len(_history.history['loss'])} epochs; expected 30"
            _after = snapshot(_ft)
            assert all(np.array_equal(a, b) for a, b in zip(_after["hidden1"], _before["hidden1"])), "the frozen layer hidden1 moved: finetune must keep the trainable flags it is given"
            assert not np.array_equal(_after["head_b"][0], _before["head_b"][0]), "the new head did not move: finetune must train the model"
            _acc = accuracy(_ft, X_b_test, y_b_test)
            assert _acc >= 0.75, f"after fine-tuning the held-out accuracy on the digits 5-9 is {_acc:.3f}; expected at least 0.75"
        """),
        md("""
            ## Everything together

            Your own pretrained `base`, a new head, `hidden1` frozen, fine-tuned on the 50
            labelled images of the digits 5 to 9:
        """),
        code("""
            keras.utils.set_random_seed(0)
            model_b = freeze_pretrained(build_finetune_model(base))
            history_b = finetune(model_b, X_b, y_b)
            print(f"held-out accuracy on the digits 5-9: {accuracy(model_b, X_b_test, y_b_test):.3f} "
                  f"(final training loss {history_b.history['loss'][-1]:.3f})")
        """),
        md("""
            Try it: freeze both hidden layers, or none, or train `build_base_model()` from
            scratch on the 50 images, and compare the held-out accuracy over a few seeds. On
            these small 8x8 digits the choices differ by a few points only, and freezing is
            not always the winner; it pays most when the new task has very few labels and the
            pretrained features came from far more data than you could label yourself.
        """),
    ]


NOTEBOOKS = {
    "ex01_perceptron": ex01,
    "ex02_forward": ex02,
    "ex03_error": ex03,
    "ex04_backward": ex04,
    "ex05_updates": ex05,
    "ex06_keras": ex06,
}


def build(name: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = NOTEBOOKS[name]()
    for i, cell in enumerate(nb.cells):
        cell.id = f"{name}-{i:02d}"
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    nbformat.validate(nb)
    return nb


def main(argv: list[str]) -> int:
    names = argv or list(NOTEBOOKS)
    for name in names:
        path = SOLUTIONS / name / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(build(name), path)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
