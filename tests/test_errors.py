"""Bad input to bplib's contract functions: the error says what was expected and what came.

Messages are asserted by content (the shapes, the offending value, the number
of classes), not by exact wording, so they can be reworded but not emptied.
"""

from __future__ import annotations

import numpy as np
import pytest

import bplib


def raises_naming(exc_type, fn, *args, must_name: tuple[str, ...]):
    """Call ``fn(*args)``, expect ``exc_type``, and return its message after checking it."""
    with pytest.raises(exc_type) as info:
        fn(*args)
    message = str(info.value)
    missing = [part for part in must_name if part not in message]
    assert not missing, f"message {message!r} does not name {missing}"
    return message


# --------------------------------------------------------------------------- linear_forward


def test_linear_forward_names_both_shapes_when_W_does_not_fit_x():
    x, W, b = np.ones((2, 5)), np.ones((3, 4)), np.ones(4)
    raises_naming(ValueError, bplib.linear_forward, x, W, b,
                  must_name=("(3, 4)", "(2, 5)", "(5, M)"))


def test_linear_forward_names_the_expected_shape_of_b():
    x, W = np.ones((2, 3)), np.ones((3, 4))
    for b in (np.ones(3), np.ones((1, 4))):
        raises_naming(ValueError, bplib.linear_forward, x, W, b,
                      must_name=(str(b.shape), "(3, 4)", "(4,)"))


@pytest.mark.parametrize("x_shape, W_shape, bad, layout", [
    ((3,), (3, 4), "x", "(N, D)"),
    ((2, 3), (3,), "W", "(D, M)"),
])
def test_linear_forward_asks_for_2d_x_and_W(x_shape, W_shape, bad, layout):
    x, W = np.ones(x_shape), np.ones(W_shape)
    shape = x_shape if bad == "x" else W_shape
    raises_naming(ValueError, bplib.linear_forward, x, W, np.ones(4),
                  must_name=(bad, layout, str(shape)))


# --------------------------------------------------------------------------- backward dout shapes


def _backward_cases():
    x = np.ones((2, 4))
    linear_cache = bplib.linear_forward(np.ones((2, 3)), np.ones((3, 4)), np.zeros(4))[1]
    return {
        "linear_backward": (bplib.linear_backward, linear_cache),
        "relu_backward": (bplib.relu_backward, bplib.relu_forward(x)[1]),
        "leaky_relu_backward": (bplib.leaky_relu_backward, bplib.leaky_relu_forward(x)[1]),
        "sigmoid_backward": (bplib.sigmoid_backward, bplib.sigmoid_forward(x)[1]),
        "tanh_backward": (bplib.tanh_backward, bplib.tanh_forward(x)[1]),
        "softmax_backward": (bplib.softmax_backward, bplib.softmax_forward(x)[1]),
    }


@pytest.mark.parametrize("name", list(_backward_cases()))
@pytest.mark.parametrize("bad_shape", [(4, 2), (2,), (2, 4, 1), (1, 4)])
def test_backward_names_both_shapes_when_dout_is_misshapen(name, bad_shape):
    """Every forward output here is (2, 4); a transposed, flat or broadcastable dout is refused."""
    backward, cache = _backward_cases()[name]
    raises_naming(ValueError, backward, np.ones(bad_shape), cache,
                  must_name=("dout", str(bad_shape), "(2, 4)"))


# --------------------------------------------------------------------------- softmax_cross_entropy


@pytest.mark.parametrize("bad_label", [3, 7, -1])
def test_softmax_cross_entropy_names_the_label_out_of_range_and_the_number_of_classes(bad_label):
    # 3 (== the number of classes) is the boundary case; 7 and -1 show the label is named.
    logits = np.zeros((3, 3))
    labels = np.array([0, bad_label, 2])
    message = raises_naming(ValueError, bplib.softmax_cross_entropy, logits, labels,
                            must_name=(str(bad_label), "3 classes"))
    assert "0..2" in message


@pytest.mark.parametrize("labels, shown", [([0.5, 1.0], "0.5"), ([0.0, np.nan], "nan")])
def test_softmax_cross_entropy_refuses_non_integer_labels_and_names_the_value(labels, shown):
    raises_naming(TypeError, bplib.softmax_cross_entropy, np.zeros((2, 3)), np.array(labels),
                  must_name=("integer", shown))


def test_softmax_cross_entropy_refuses_text_labels():
    raises_naming(TypeError, bplib.softmax_cross_entropy, np.zeros((2, 3)), ["cat", "dog"],
                  must_name=("integer",))


def test_softmax_cross_entropy_accepts_whole_numbers_stored_as_floats():
    as_int = bplib.softmax_cross_entropy(np.eye(3), np.array([0, 2, 1]))
    as_float = bplib.softmax_cross_entropy(np.eye(3), np.array([0.0, 2.0, 1.0]))
    assert as_int[0] == as_float[0]
    np.testing.assert_array_equal(as_int[1], as_float[1])


def test_softmax_cross_entropy_refuses_one_hot_labels_naming_their_shape():
    raises_naming(ValueError, bplib.softmax_cross_entropy, np.zeros((2, 3)), np.eye(3)[:2],
                  must_name=("1-D", "(2, 3)", "(2,)"))


def test_softmax_cross_entropy_names_both_batch_sizes():
    raises_naming(ValueError, bplib.softmax_cross_entropy, np.zeros((2, 3)), [0, 1, 2],
                  must_name=("3", "2"))


def test_softmax_cross_entropy_asks_for_2d_logits():
    raises_naming(ValueError, bplib.softmax_cross_entropy, np.zeros(3), [0],
                  must_name=("(N, C)", "(3,)"))


# --------------------------------------------------------------------------- binary_cross_entropy


@pytest.mark.parametrize("bad", [0.5, 2, -1])
def test_binary_cross_entropy_refuses_targets_outside_0_and_1_naming_the_value(bad):
    t = np.array([0, bad, 1])
    raises_naming(ValueError, bplib.binary_cross_entropy, np.zeros(3), t,
                  must_name=("0 or 1", str(float(bad))))


def test_binary_cross_entropy_names_both_shapes():
    raises_naming(ValueError, bplib.binary_cross_entropy, np.zeros(3), np.zeros(2),
                  must_name=("(3,)", "(2,)"))


# --------------------------------------------------------------------------- mse_loss


@pytest.mark.parametrize("y_shape, t_shape", [((4, 1), (4,)), ((4,), (4, 1)), ((3, 2), (2, 3))])
def test_mse_loss_refuses_to_broadcast_and_names_both_shapes(y_shape, t_shape):
    """(N, 1) against (N,) would broadcast to (N, N) and give a wrong loss silently."""
    raises_naming(ValueError, bplib.mse_loss, np.zeros(y_shape), np.zeros(t_shape),
                  must_name=(str(y_shape), str(t_shape)))


# --------------------------------------------------------------------------- non-numeric input


NON_NUMERIC = {
    "text": "abc",
    "None": None,
    "mixed list": [1.0, "a"],
    "dict": {"a": 1},
    "complex": np.ones((2, 2)) + 1j,
}


def _calls_with(bad):
    ok = np.ones((2, 2))
    return {
        "linear_forward x": (bplib.linear_forward, (bad, ok, np.ones(2)), "x"),
        "linear_forward W": (bplib.linear_forward, (ok, bad, np.ones(2)), "W"),
        "relu_forward": (bplib.relu_forward, (bad,), "x"),
        "sigmoid": (bplib.sigmoid, (bad,), "x"),
        "tanh_forward": (bplib.tanh_forward, (bad,), "x"),
        "softmax": (bplib.softmax, (bad,), "x"),
        "relu_backward dout": (bplib.relu_backward, (bad, ok), "dout"),
        "mse_loss y": (bplib.mse_loss, (bad, ok), "y"),
        "mse_loss t": (bplib.mse_loss, (ok, bad), "t"),
        "softmax_cross_entropy": (bplib.softmax_cross_entropy, (bad, [0, 1]), "logits"),
        "binary_cross_entropy t": (bplib.binary_cross_entropy, (np.ones(2), bad), "t"),
    }


@pytest.mark.parametrize("kind", list(NON_NUMERIC))
@pytest.mark.parametrize("call", list(_calls_with(None)))
def test_non_numeric_input_is_a_type_error_naming_the_argument(kind, call):
    fn, args, argname = _calls_with(NON_NUMERIC[kind])[call]
    message = raises_naming(TypeError, fn, *args, must_name=(argname,))
    assert message.startswith(f"{argname} "), message
