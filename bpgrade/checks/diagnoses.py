"""The diagnoses: every mistake the checks can name, once, with the book section that teaches it.

A check that finds a mistake raises :class:`Diagnosis`, an ``AssertionError`` that carries
a short stable id (``db-wrong-axis``, ``value-grad-overwritten``, ``looks-numerical``, ...)
and the link to the place in the book that explains the point. Its text, which the student
reads under the failing test cell and in the feedback, is the message, then a line naming
the section and its link, then, as its last line, exactly ``[diagnosis: <id>]``: a class
report reads that line and never parses the prose.

:data:`CATALOGUE` holds every id once: ``kind`` is ``"mistake"`` for what a check diagnoses
and ``"outcome"`` for what happens to a submission that is not a diagnosis (an exception
of the student's own code, a timeout, a resource limit, a refused cell, a repaired
notebook, a late penalty, a submission that could not be graded), ``message`` the English
template (``str.format`` fields), ``section`` the title of the section that teaches it and
``url`` that section, relative to the book's root.

Links are relative to the book's root (``chapters/04_gradients.html#...``), not absolute:
the book has no fixed address (``_config.yml`` sets none; each course serves its own copy,
on its own server or from ``_build/html`` offline, in English or, under ``zh_CN/``, in
Chinese), so only the path inside the book is the same everywhere. Anchors are the ids
Sphinx gives the section headings (or a label placed on a heading); ``tests/test_diagnoses.py``
checks that each one exists in the built site.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from bpgrade import language
from bpgrade.language import N_

__all__ = ["CATALOGUE", "Diagnosis", "Entry", "diagnose", "where"]


@dataclass(frozen=True)
class Entry:
    """One diagnosis or outcome: its id, kind, message template, and the section that teaches it."""

    id: str
    kind: str  # "mistake" | "outcome"
    message: str  # English, ``str.format`` fields
    section: str  # the section's title
    url: str  # relative to the book's root


class Diagnosis(AssertionError):
    """A mistake a check diagnosed: ``id``, ``url``, ``section`` and the ``message``.

    ``str(d)`` is the message, a line naming the section and its link, and, last,
    ``[diagnosis: <id>]``.
    """

    def __init__(self, id: str, message: str):  # noqa: A002 - the contract's name
        entry = CATALOGUE[id]
        self.id, self.url, self.section, self.message = id, entry.url, entry.section, message
        super().__init__(f"{message}\n{where(entry)}\n[diagnosis: {id}]")

    def __reduce__(self):
        return (type(self), (self.id, self.message))


def diagnose(id: str, **fields) -> Diagnosis:  # noqa: A002
    """The :class:`Diagnosis` ``id`` with its catalogue message filled in with ``fields``,
    in the language of the checks' messages (:func:`bpgrade.language.current`; the
    template's translation, and each field's that has one: a :class:`~bpgrade.language.Text`
    or a marked phrase; names and numbers stay as they are)."""
    entry = CATALOGUE[id]
    if entry.kind != "mistake":
        raise ValueError(f"{id} is an outcome, not a diagnosis a check can raise")
    return Diagnosis(id, language.render(entry.message, fields))


_PAGES = {
    "chapters/01_history.html": "chapter 1",
    "chapters/02_forward.html": "chapter 2",
    "chapters/03_error.html": "chapter 3",
    "chapters/04_gradients.html": "chapter 4",
    "chapters/05_updates.html": "chapter 5",
    "chapters/06_keras.html": "chapter 6",
    "chapters/07_applications.html": "chapter 7",
    "chapters/faq.html": "the FAQ",
    "chapters/student_guide.html": "the student guide",
    "chapters/instructor_guide.html": "the instructor guide",
    "chapters/security.html": "the grader's security model",
}


def where(entry: Entry, lang: str | None = None) -> str:
    """The line that sends the student to the section: ``Read: chapter 4, "…" (url)``; in
    another language, to the section of that language's edition (``zh_CN/chapters/...``)."""
    lang = lang or language.current()
    page = _PAGES[entry.url.split("#")[0]]
    url = entry.url if lang == language.ENGLISH else f"{lang}/{entry.url}"
    return language.render(N_('Read: {page}, "{section}" in the course book ({url})'),
                           {"page": page, "section": entry.section, "url": url}, lang)


# ----------------------------------------------------------------------------- sections

CH1 = "chapters/01_history.html"
CH2 = "chapters/02_forward.html"
CH3 = "chapters/03_error.html"
CH4 = "chapters/04_gradients.html"
CH5 = "chapters/05_updates.html"
FAQ = "chapters/faq.html"
GUIDE = "chapters/student_guide.html"
SECURITY = "chapters/security.html"

_S = {  # key: (title, url)
    "answer-cells": ("Work in the answer cells", f"{GUIDE}#work-in-the-answer-cells"),
    "check-your-work": ("Check your work", f"{GUIDE}#check-your-work"),
    "submit": ("Submit", f"{GUIDE}#submit"),
    "read-feedback": ("Read your feedback", f"{GUIDE}#read-your-feedback"),
    "limits": ("Limits", f"{SECURITY}#limits"),
    "integrity": ("Integrity: what the autograder refuses to run",
                  f"{SECURITY}#integrity-what-the-autograder-refuses-to-run"),
    "repairs": ("Repairs", f"{SECURITY}#repairs"),
    "perceptron": ("Rosenblatt's perceptron (1958): a unit that learns from its mistakes",
                   f"{CH1}#rosenblatt-s-perceptron-1958-a-unit-that-learns-from-its-mistakes"),
    "xor": ("Minsky and Papert (1969): what one layer cannot do",
            f"{CH1}#minsky-and-papert-1969-what-one-layer-cannot-do"),
    "matrix": ("A layer is a matrix product", f"{CH2}#a-layer-is-a-matrix-product"),
    "batches": ("Batches: one example per row", f"{CH2}#batches-one-example-per-row"),
    "activations": ("Activation functions", f"{CH2}#activation-functions"),
    "nonlinearity": ("Why a nonlinearity is needed", f"{CH2}#why-a-nonlinearity-is-needed"),
    "squared-error": ("Squared error", f"{CH3}#squared-error"),
    "cross-entropy": ("Cross-entropy from maximum likelihood",
                      f"{CH3}#cross-entropy-from-maximum-likelihood"),
    "bce": ("Two classes: sigmoid and binary cross-entropy",
            f"{CH3}#two-classes-sigmoid-and-binary-cross-entropy"),
    "softmax": ("Many classes: softmax and cross-entropy",
                f"{CH3}#many-classes-softmax-and-cross-entropy"),
    "overflow": ("Computing the loss without overflow",
                 f"{CH3}#computing-the-loss-without-overflow"),
    "chain-rule": ("The chain rule on a computational graph",
                   f"{CH4}#the-chain-rule-on-a-computational-graph"),
    "fan-out": ("Where a value fans out, gradients add",
                f"{CH4}#where-a-value-fans-out-gradients-add"),
    "vjp": ("Backward functions are vector–Jacobian products",
            f"{CH4}#backward-functions-are-vectorjacobian-products"),
    "autodiff": ("A small autodiff engine", f"{CH4}#a-small-autodiff-engine"),
    "two-layer": ("The backward pass of a two-layer network",
                  f"{CH4}#the-backward-pass-of-a-two-layer-network"),
    "gradcheck": ("Gradient checking", f"{CH4}#ch04-gradcheck"),
    "pitfalls": ("Pitfalls of gradient checking", f"{CH4}#pitfalls-of-gradient-checking"),
    "algorithm": ("The algorithm", f"{CH4}#the-algorithm"),
    "momentum": ("Momentum", f"{CH5}#momentum"),
    "adam": ("Adaptive methods: RMSProp and Adam", f"{CH5}#adaptive-methods-rmsprop-and-adam"),
    "numerically": ("Why not just compute gradients numerically?",
                    f"{FAQ}#why-not-just-compute-gradients-numerically"),
    "half": ("Why the ½ in squared error?", f"{FAQ}#why-the-tfrac12-in-squared-error"),
}

_MATCHES = "{what} is wrong: it matches what you get if you "
_LOSS_MATCHES = "{fn}: the loss {got} should be {want}; it matches what you get if you "
_ONE_PATH = ("the gradient of a value used twice counts one path only: accumulate with += "
             "instead of =")

# (id, section key, message template); mistakes first, then outcomes.
_MISTAKES = [
    # ---------------------------------------------------------------- what came back
    ("returned-none", "answer-cells",
     "{fn} returned None; it must return {expected}. Did you forget `return`?"),
    ("not-a-tuple", "answer-cells", "{fn} returned {got}; it must return a tuple {expected}"),
    ("wrong-count", "answer-cells",
     "{fn} returned a {kind} of {count} values; it must return {want}: {expected}"),
    ("entry-none", "answer-cells", "{fn} returned None for {name}; expected an array"),
    ("not-numbers", "answer-cells",
     "{fn}: {name} is {got}, which is not an array of numbers ({error})"),
    ("reference-used", "answer-cells",
     "{fn} is bplib's own {what}: the exercise asks you to write it yourself"),
    ("not-one-number", "squared-error",
     "{fn}: {name} has shape {shape}; it must be one number (the mean over the batch, not "
     "one value per example)"),
    ("not-finite", "overflow", "{fn}: {name} contains {value}{where}; expected finite numbers"),
    ("unstable-overflow", "overflow",
     "{fn} is numerically unstable{inputs}: numpy reports '{error}'. Rewrite it so that no "
     "exp() gets a large positive argument (subtract the row's maximum first, or use "
     "exp(-|x|))."),
    ("unstable-log-zero", "overflow",
     "{fn} is numerically unstable{inputs}: numpy reports '{error}'. Something is divided by "
     "zero or log(0) is taken: work with log-probabilities (x - logsumexp(x)) rather than "
     "log(probabilities)."),
    ("unstable-nan", "overflow",
     "{fn} is numerically unstable{inputs}: numpy reports '{error}'. An operation gave NaN: "
     "inf - inf, 0/0, or the square root or log of a negative number."),
    # ---------------------------------------------------------------- inputs left alone
    ("input-modified", "vjp",
     "{fn} changed its input {name} in place; it must leave its inputs as they were: {hint}"),
    ("cache-modified", "vjp",
     "{fn} changed the cache in place; it must leave its inputs as they were"),
    ("params-modified", "two-layer", "{fn} changed params[{key}]; it must leave params alone"),
    # ---------------------------------------------------------------- shapes
    ("wrong-shape", "batches", "{what} has shape {got} but {target}; it must have shape {want}"),
    ("transposed", "matrix", "{what} {detail}: check the order of the matrix product"),
    ("shape-extra-axis", "batches",
     "{what} has shape {got} but {target}: the same entries with an extra or missing axis of "
     "length 1 (summed with keepdims=True, or a column where a row was needed?)"),
    # ---------------------------------------------------------------- values
    ("wrong-sign", "gradcheck", "{what} has the wrong sign: it equals minus {reference}"),
    ("all-zeros", "gradcheck", "{what} is all zeros but {reference} is not"),
    ("factor-batch-twice", "gradcheck",
     "{what} differs from {reference} by a factor of about {factor}{sign} (= 1/N with N = {n}): "
     "did you divide by the batch size twice?"),
    ("factor-batch-missing", "gradcheck",
     "{what} differs from {reference} by a factor of about {factor}{sign} (= N = {n}): did you "
     "forget to divide by the batch size?"),
    ("factor-two", "gradcheck",
     "{what} differs from {reference} by a factor of about {factor}{sign}: is a factor 1/2 "
     "missing, or the 2 of d(u**2)/du = 2u counted twice?"),
    ("factor-half", "gradcheck",
     "{what} differs from {reference} by a factor of about {factor}{sign}: did you drop the 2 "
     "of d(u**2)/du = 2u, or halve twice?"),
    ("constant-factor", "gradcheck",
     "{what} differs from {reference} by a factor of about {factor}{sign}"),
    ("wrong-values", "gradcheck",
     "{what} is wrong: relative error {error}{where}: yours {got}, {word} {want}"),
    ("wrong-loss", "cross-entropy", "{fn}: the loss is {got} but should be {want}{ratio}"),
    ("loss-wrong-sign", "cross-entropy",
     "{fn}: the loss is {got} but should be {want}: it has the wrong sign (these losses are "
     "never negative)"),
    # ---------------------------------------------------------------- derived, not numerical
    ("looks-numerical", "numerically",
     "{fn}: {name} looks numerical, not derived{where}: it is right to about {error} relative "
     "error, where the chain rule gives {allowed} or better. Finite differences (nudging an "
     "input by h and calling the forward function or the loss again) are how the grader "
     "checks a gradient, not how to compute one: apply the chain rule"),
    ("looks-numerical-at-kink", "pitfalls",
     "{fn}: {name} looks numerical, not derived: at x = {x}, that close to the kink at 0, it "
     "is {got} where the derivative gives {right}. A difference quotient whose step reaches "
     "across the kink averages the two slopes; {fix}"),
    ("low-precision", "pitfalls",
     "{fn}: {name} is {dtype} and only right to about {error} relative error; compute it in "
     "float64 (the dtype of the inputs)"),
    # ---------------------------------------------------------------- ex01: the perceptron
    ("perceptron-error-sign", "perceptron",
     _MATCHES + "take y_hat - y as the error: the rule is w += lr * (y - y_hat) * x"),
    ("perceptron-w-shape", "perceptron",
     "{fn}: w has shape {shape}; expected (2,), one per input"),
    ("perceptron-no-counts", "perceptron", "{fn}: mistakes is empty; record one count per epoch"),
    ("perceptron-xor-converged", "xor",
     "{fn}: mistakes per epoch are {mistakes}; XOR is not linearly separable, so every one of "
     "the {epochs} epochs must make a mistake"),
    ("perceptron-misclassifies", "perceptron",
     "{fn}: the returned w={w}, b={b} classify the four points as {pred}, but the targets are "
     "{targets}"),
    ("perceptron-no-early-stop", "perceptron",
     "{fn}: mistakes per epoch are {mistakes}; training must stop right after the first epoch "
     "with no mistakes, and that epoch's count is 0"),
    # ---------------------------------------------------------------- ex02: the forward pass
    ("linear-forgot-bias", "matrix", _MATCHES + "forget to add the bias: out = x @ W + b"),
    ("relu-reduces", "activations",
     "{what} has shape {got} but {target}: it matches np.max(x, 0), a maximum over the batch "
     "(axis 0); ReLU is np.maximum(x, 0), entry by entry"),
    ("two-layer-forgot-relu", "nonlinearity",
     _MATCHES + "leave out the ReLU between the layers: scores = relu(X W1 + b1) W2 + b2"),
    # ---------------------------------------------------------------- ex03: losses
    ("mse-missing-half", "half",
     _LOSS_MATCHES + "leave out the 1/2: the contract is sum((y - t)**2) / (2N)"),
    ("mse-mean-over-entries", "squared-error",
     _LOSS_MATCHES + "take the mean over every entry (np.mean) instead of dividing by N only"),
    ("mse-grad-over-entries", "squared-error",
     _MATCHES + "divide by every entry (y.size) instead of N = y.shape[0]"),
    ("mse-grad-reversed", "squared-error",
     _MATCHES + "compute (t - y) / N: the gradient is (y - t) / N"),
    ("loss-summed", "cross-entropy",
     _LOSS_MATCHES + "sum over the batch instead of taking the mean"),
    ("ce-grad-not-averaged", "softmax", _MATCHES + "forget to divide by N"),
    ("ce-onehot-missing", "softmax",
     _MATCHES + "forget to subtract 1 at the true class (softmax(z) - onehot(y))"),
    ("bce-grad-reversed", "bce",
     _MATCHES + "use t - sigmoid(z): the gradient is (sigmoid(z) - t) / N"),
    # ---------------------------------------------------------------- ex04: backward
    ("db-averaged", "two-layer",
     _MATCHES + "average over the batch instead of summing (db = dout.sum(axis=0))"),
    ("db-wrong-axis", "two-layer",
     "{what} is wrong: it matches dout.sum(axis=1), a sum over the outputs; b was added to "
     "every row of the batch, so db sums over the batch: dout.sum(axis=0)"),
    ("relu-mask-inverted", "two-layer",
     _MATCHES + "pass dout through where x < 0 instead of where x > 0"),
    ("relu-mask-from-dout", "two-layer",
     _MATCHES + "take the mask from dout: it comes from the cached input, dout * (x > 0)"),
    ("relu-mask-at-zero", "two-layer",
     "{fn}: at x = 0 the gradient is {got} where it must be 0: the exercise takes ReLU's "
     "derivative at 0 to be 0, so the mask is x > 0, not x >= 0"),
    ("sigmoid-cache-as-x", "activations",
     _MATCHES + "treat the cache as x: the cache is out = sigmoid(x), so "
                "dx = dout*out*(1-out)"),
    ("tanh-cache-as-x", "activations",
     _MATCHES + "treat the cache as x: the cache is out = tanh(x), so dx = dout*(1-out**2)"),
    ("tanh-one-minus-out", "activations",
     _MATCHES + "write 1 - out instead of 1 - out**2"),
    ("dout-missing", "vjp", _MATCHES + "forget to multiply by dout"),
    ("net-relu-skipped", "two-layer",
     _MATCHES + "skip the ReLU in the backward pass: da1 = relu_backward(dh, cache) before "
                "the first layer's backward"),
    ("grads-not-dict", "two-layer",
     "{fn}: grads is {got}; it must be a dict with keys W1, b1, W2, b2"),
    ("grads-missing-keys", "two-layer",
     "{fn}: grads has keys {keys} but is missing {missing}; it must have W1, b1, W2, b2"),
    # ---------------------------------------------------------------- ex05: updates
    ("momentum-old-velocity", "momentum",
     _MATCHES + "update w with the old velocity (w + v before v is updated)"),
    ("momentum-adds-gradient", "momentum",
     _MATCHES + "add lr*dw to the velocity: the step goes against the gradient, "
                "v = mu*v - lr*dw"),
    ("momentum-sign-convention", "momentum",
     _MATCHES + "use v = mu*v + lr*dw and w = w - v: the contract keeps v = mu*v - lr*dw "
                "and w = w + v"),
    ("adam-no-bias-correction", "adam",
     _MATCHES + "leave out the bias correction m_hat = m / (1 - beta1**t), "
                "v_hat = v / (1 - beta2**t)"),
    ("adam-eps-inside-sqrt", "adam",
     _MATCHES + "put eps inside the square root: the step is lr * m_hat / (sqrt(v_hat) + eps)"),
    ("adam-v-not-squared", "adam", _MATCHES + "average dw instead of dw**2 into v"),
    # ---------------------------------------------------------------- ex07: the Value engine
    ("value-not-returned", "autodiff", "{fn} returned {got}; it must return a new Value"),
    ("value-forward-changed", "autodiff",
     "{fn}: the forward value is {got} but should be {want}; keep the given forward half as "
     "it is"),
    ("value-grad-overwritten", "fan-out", "{fn}: {context}" + _ONE_PATH),
    ("value-data-changed", "autodiff",
     "{fn}: {where}, .data of {node} is {after} where it was {before}: a backward rule adds "
     "into its inputs' .grad and changes nothing else; leave every .data as it is"),
    ("value-graph-changed", "autodiff",
     "{fn}: {where}, {what} changed: a backward pass adds into .grad and changes nothing "
     "else; leave ._prev, ._backward and the other nodes' .grad as they are"),
    ("value-grad-unchanged", "autodiff",
     "{fn}: out._backward() left {name}.grad unchanged; it must add d out/d {name} * out.grad "
     "into {name}.grad (did you set out._backward?)"),
    ("value-chain-rule-missing", "chain-rule",
     "{fn}: {name}.grad gained the local derivative but not times out.grad: multiply by "
     "out.grad (the chain rule)"),
    ("value-wrong-sign", "autodiff", "{fn}: the gradient of {name} has the wrong sign"),
    ("relu-passes-negative", "two-layer",
     "relu passes gradient where its input was negative: the derivative of max(0, x) is 0 for "
     "x <= 0"),
    ("relu-blocks-positive", "two-layer",
     "relu blocks the gradient where its input was positive: the derivative of max(0, x) is 1 "
     "for x > 0"),
    ("mul-own-data", "autodiff",
     "__mul__: multiplies by its own data instead of the other factor's "
     "(self.grad += self.data * out.grad)"),
    ("pow-exponent-not-lowered", "autodiff",
     "__pow__: forgot to lower the exponent by one: d(x**n)/dx = n * x**(n-1)"),
    ("pow-factor-missing", "autodiff",
     "__pow__: forgot the factor n: d(x**n)/dx = n * x**(n-1)"),
    ("tanh-used-input", "activations",
     "tanh: used 1 - x**2 where the derivative of tanh is 1 - tanh(x)**2 = 1 - out.data**2"),
    ("exp-used-input", "autodiff",
     "exp: used x where the derivative of exp(x) is exp(x) itself = out.data"),
    ("value-local-grad-wrong", "autodiff",
     "{fn}: after out._backward() with out.grad = {g}, {name}.grad is {got} but should be "
     "{want} ({start} it had + {local} * {g})"),
    ("value-fan-out-wrong", "fan-out",
     "{fn}: in {what}, a.grad is {got} but should be {want}, the sum over both paths: each "
     "use of a Value adds its own share (never skip an input because it is the same Value "
     "as another)"),
    ("value-grad-not-number", "autodiff",
     "{fn}: .grad of an input is {got}, not a number; add a float into it (self.grad += ...)"),
    ("value-graph-gradient-wrong", "autodiff",
     "{fn}: on {what}, the gradient of input {index} is {got} but the numerical gradient is "
     "{want}"),
    ("backward-graph-gradient-wrong", "algorithm",
     "backward: on {what}, the gradient of input {index} is {got} but the numerical gradient "
     "is {want} (did backward set the output's grad to 1 and run each node once?)"),
    ("backward-seed-missing", "autodiff",
     "backward: after x.backward() on a lone Value, x.grad is {got}; d self / d self = 1: "
     "set self.grad = 1 first"),
    ("backward-recursive", "algorithm",
     "backward: RecursionError on {what}: a graph deeper than Python's recursion limit (an "
     "unrolled RNN) must work: build the topological order with a loop and an explicit "
     "stack, not a recursive function"),
    ("backward-visits-twice", "algorithm",
     "backward: on {what}, the _backward of a node ran more than once (a value used several "
     "times was visited once per use): keep a set of visited nodes"),
    ("backward-nodes-missed", "algorithm",
     "backward: on {what}, {missing} of the {total} nodes never ran their _backward: visit "
     "every node the output depends on (through _prev)"),
    ("backward-not-topological", "algorithm",
     "backward: on {what}, backward visits a node before all its parents: a node's _backward "
     "must run only after every node that uses it has passed its gradient on; use a "
     "topological order, reversed"),
]

_OUTCOMES = [
    ("student-exception", "check-your-work",
     "your code raised an exception (the report adds its type: student-exception:TypeError)"),
    ("cell-timeout", "answer-cells", "a cell ran longer than the grader's time limit"),
    ("resource-memory", "limits", "the notebook used more memory than the grader allows"),
    ("resource-processes", "limits", "the notebook started more processes than the grader "
                                     "allows"),
    ("resource-tmp", "limits", "the notebook wrote more to /tmp than the grader allows"),
    ("resource-output", "limits", "the notebook printed more output than the grader keeps"),
    ("integrity-refusal", "integrity", "the grader refused to run a cell (integrity check)"),
    ("notebook-repaired", "repairs", "the notebook's structure was repaired before grading"),
    ("late-penalty", "submit", "the submission was late and lost points"),
    ("grading-failed", "read-feedback", "the grader could not grade the submission"),
]


def _entries():
    for kind, rows in (("mistake", _MISTAKES), ("outcome", _OUTCOMES)):
        for id_, key, message in rows:
            title, url = _S[key]
            yield Entry(id_, kind, message, title, url)


CATALOGUE: MappingProxyType[str, Entry] = MappingProxyType({e.id: e for e in _entries()})
"""Every id, once: the diagnoses (``kind == "mistake"``) and the outcomes."""

if len(CATALOGUE) != len(_MISTAKES) + len(_OUTCOMES):  # pragma: no cover - a typo in the table
    raise RuntimeError("an id appears twice in the catalogue of diagnoses")
