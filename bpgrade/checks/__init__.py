"""The autograder's checks: the functions the exercises' test cells call. Numpy only.

``from bpgrade.checks import check_linear_backward`` (and every other ``check_*``) is what a
test cell writes. Each check runs the student's function on inputs the student has not
seen, compares what comes back with what the grader computes, and raises a
:class:`Diagnosis` (an ``AssertionError``) that says in words what
is wrong, links the section of the book that teaches the point, and ends with the line
``[diagnosis: <id>]``.

Nothing a submission can reach decides a grade (``bpgrade.checks._trust``): the checks use
a private copy of the builtins, their modules refuse every attribute write, and the checks
that compute with numpy verify, after every call into student code, that numpy, bplib,
math and the builtins are as they were at import; exercise 7's checks use no numpy at all.

====================================  ========================================================
module                                what it holds
====================================  ========================================================
``bpgrade.checks.diagnoses``          every diagnosis id, once: its message and book section
``bpgrade.checks.compare``            what every check shares: reading what came back,
                                      comparing arrays, the words for what differs
``bpgrade.checks.numgrad``            the grader's numerical gradients, every entry in
                                      one evaluation of bplib's reference
``bpgrade.checks.ex01_perceptron``    exercise 1: the perceptron rule
``bpgrade.checks.ex02_forward``       exercise 2: forward functions
``bpgrade.checks.ex03_error``         exercise 3: losses and their gradients
``bpgrade.checks.ex04_backward``      exercise 4: backward functions, a network
``bpgrade.checks.ex05_updates``       exercise 5: update rules
``bpgrade.checks.ex07_autodiff``      exercise 7: a scalar autodiff engine
====================================  ========================================================
"""

from __future__ import annotations

import sys as _sys

from bpgrade.checks import _trust
from bpgrade.checks.compare import check_array, check_value, expect
from bpgrade.checks.diagnoses import Diagnosis
from bpgrade.checks.ex01_perceptron import (
    check_perceptron_update,
    check_train_perceptron,
    reference_perceptron_update,
)
from bpgrade.checks.ex02_forward import (
    check_forward,
    check_linear_forward,
    check_relu_forward,
    check_sigmoid_forward,
    check_two_layer_forward,
)
from bpgrade.checks.ex03_error import (
    check_binary_cross_entropy,
    check_loss,
    check_mse_loss,
    check_softmax_cross_entropy,
)
from bpgrade.checks.ex04_backward import (
    check_backward,
    check_linear_backward,
    check_relu_backward,
    check_sigmoid_backward,
    check_tanh_backward,
    check_two_layer_net,
)
from bpgrade.checks.ex05_updates import check_adam_update, check_sgd_momentum_update
from bpgrade.checks.ex07_autodiff import (
    check_value_add,
    check_value_backward,
    check_value_exp,
    check_value_mul,
    check_value_pow,
    check_value_relu,
    check_value_tanh,
)

__all__ = [
    "Diagnosis",
    "check_array",
    "check_value",
    "expect",
    "check_backward",
    "check_linear_backward",
    "check_relu_backward",
    "check_sigmoid_backward",
    "check_tanh_backward",
    "check_forward",
    "check_linear_forward",
    "check_relu_forward",
    "check_sigmoid_forward",
    "check_two_layer_forward",
    "check_loss",
    "check_mse_loss",
    "check_softmax_cross_entropy",
    "check_binary_cross_entropy",
    "check_two_layer_net",
    "check_sgd_momentum_update",
    "check_adam_update",
    "check_perceptron_update",
    "check_train_perceptron",
    "reference_perceptron_update",
    "check_value_add",
    "check_value_mul",
    "check_value_pow",
    "check_value_tanh",
    "check_value_relu",
    "check_value_exp",
    "check_value_backward",
]

# Last: no attribute of the package or of any of its modules can be set or deleted now, nor
# of the module that words their messages in the student's language.
_trust.seal([m for n, m in list(_sys.modules.items())
             if n == __name__ or n.startswith(__name__ + ".") or n == "bpgrade.language"])
