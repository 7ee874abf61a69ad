"""bplib.data: truth tables, seeded toy problems, scikit-learn loaders, splitting and batching."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest

import bplib
from bplib import data

GENERATORS = {
    "moons": lambda rng: data.make_moons(n=101, rng=rng),
    "circles": lambda rng: data.make_circles(n=101, rng=rng),
    "spirals": lambda rng: data.make_spirals(n_per_class=40, classes=3, rng=rng),
}


# ----------------------------------------------------------------------------- truth tables


@pytest.mark.parametrize(
    ("name", "op"),
    [("and", np.logical_and), ("or", np.logical_or), ("xor", np.logical_xor),
     ("nand", lambda a, b: ~np.logical_and(a, b))],
)
def test_truth_table_matches_the_boolean_operation(name, op):
    X, y = data.truth_table(name)
    assert X.shape == (4, 2) and X.dtype == np.float64
    assert y.shape == (4,) and np.issubdtype(y.dtype, np.integer)
    np.testing.assert_array_equal(y, op(X[:, 0] > 0, X[:, 1] > 0).astype(int))
    assert {tuple(row) for row in X} == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_truth_table_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"'nor'.*'and'.*'xor'"):
        data.truth_table("nor")


# ----------------------------------------------------------------------------- generators


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generator_is_reproducible_from_an_int_seed(name):
    X1, y1 = GENERATORS[name](7)
    X2, y2 = GENERATORS[name](7)
    X3, _ = GENERATORS[name](8)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(X1, X3)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generator_accepts_a_numpy_generator(name):
    X1, y1 = GENERATORS[name](np.random.default_rng(5))
    X2, y2 = GENERATORS[name](5)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize(("name", "n", "counts"), [
    ("moons", 101, [50, 51]), ("circles", 101, [50, 51]), ("spirals", 120, [40, 40, 40]),
])
def test_generator_shapes_and_class_balance(name, n, counts):
    X, y = GENERATORS[name](0)
    assert X.shape == (n, 2) and X.dtype == np.float64
    assert y.shape == (n,) and np.issubdtype(y.dtype, np.integer)
    assert np.bincount(y).tolist() == counts
    assert np.all(np.isfinite(X))


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generator_shuffles_the_classes(name):
    _, y = GENERATORS[name](0)
    assert len(set(y[:20].tolist())) > 1


def test_circles_inner_class_has_radius_factor():
    X, y = data.make_circles(n=400, noise=0.0, factor=0.3, rng=0)
    r = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(r[y == 0], 1.0)
    np.testing.assert_allclose(r[y == 1], 0.3)


def test_circles_rejects_factor_outside_unit_interval():
    with pytest.raises(ValueError, match="factor.*got 1.5"):
        data.make_circles(factor=1.5)


def test_moons_without_noise_lie_on_their_half_circles():
    X, y = data.make_moons(n=200, noise=0.0, rng=0)
    np.testing.assert_allclose(np.hypot(X[y == 0, 0], X[y == 0, 1]), 1.0)
    np.testing.assert_allclose(np.hypot(X[y == 1, 0] - 1, X[y == 1, 1] - 0.5), 1.0)


# ----------------------------------------------------------------------------- loaders


@pytest.mark.parametrize(
    ("loader", "features", "n_total", "classes"),
    [(data.load_digits, 64, 1797, 10), (data.load_breast_cancer, 30, 569, 2)],
    ids=["digits", "breast_cancer"],
)
def test_classification_loader_shapes_labels_and_stratification(loader, features, n_total, classes):
    split = loader()
    X_train, X_test, y_train, y_test = split
    assert X_train.shape[1] == X_test.shape[1] == features
    assert len(X_train) + len(X_test) == n_total
    assert len(X_test) == pytest.approx(0.25 * n_total, abs=classes)
    assert y_train.shape == (len(X_train),) and y_test.shape == (len(X_test),)
    assert np.issubdtype(y_train.dtype, np.integer)
    assert set(np.unique(y_train)) == set(np.unique(y_test)) == set(range(classes))
    p_train = np.bincount(y_train) / len(y_train)
    p_test = np.bincount(y_test) / len(y_test)
    np.testing.assert_allclose(p_train, p_test, atol=0.02)
    assert len(split.meta.target_names) == classes
    assert len(split.meta["feature_names"]) == features


@pytest.mark.parametrize("loader", [data.load_digits, data.load_breast_cancer, data.load_diabetes])
def test_loader_is_standardised_with_training_statistics(loader):
    X_train, X_test, *_ = loader()
    assert not np.isnan(X_train).any() and not np.isnan(X_test).any()
    np.testing.assert_allclose(X_train.mean(axis=0), 0.0, atol=1e-10)
    std = X_train.std(axis=0)
    varying = std > 1e-12
    np.testing.assert_allclose(std[varying], 1.0)
    # the test set uses the training statistics, so its moments are close but not exact
    assert 0.5 < X_test.std(axis=0)[varying].mean() < 1.5


def test_digits_blank_pixels_stay_finite_and_zero_in_training():
    X_train, X_test, *_ = data.load_digits()
    from sklearn.datasets import load_digits

    blank = load_digits().data.std(axis=0) == 0
    assert blank.any()  # the corner pixels of the 8x8 images are always blank
    assert np.all(X_train[:, blank] == 0)
    assert np.all(np.isfinite(X_test))


def test_diabetes_target_is_standardised_and_recoverable():
    split = data.load_diabetes()
    assert split.X_train.shape[1] == 10
    assert len(split.X_train) + len(split.X_test) == 442
    assert np.issubdtype(split.y_train.dtype, np.floating)
    assert split.y_train.mean() == pytest.approx(0.0, abs=1e-10)
    assert split.y_train.std() == pytest.approx(1.0)
    raw = split.y_train * split.meta.target_std + split.meta.target_mean
    assert 25 <= raw.min() and raw.max() <= 346  # the range of the published targets
    np.testing.assert_allclose(raw, np.round(raw), atol=1e-9)


def test_loaders_are_reproducible_by_seed_and_vary_with_it():
    a, b = data.load_breast_cancer(seed=1), data.load_breast_cancer(seed=1)
    c = data.load_breast_cancer(seed=2)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.y_train, c.y_train)


def test_split_unpacks_into_four_arrays_and_keeps_meta():
    split = data.load_breast_cancer()
    assert isinstance(split, tuple) and len(split) == 4
    assert split._fields == ("X_train", "X_test", "y_train", "y_test")
    assert split._replace(X_test=None).meta == split.meta
    with pytest.raises(AttributeError, match="no entry 'colour'"):
        _ = split.meta.colour


def test_importing_bplib_data_does_not_import_sklearn():
    code = "import sys, bplib, bplib.data; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------- splitting


def test_train_test_split_partitions_the_data_with_stratification():
    X = np.arange(100).reshape(50, 2)
    y = np.repeat([0, 1], [40, 10])
    X_train, X_test, y_train, y_test = data.train_test_split(X, y, test_size=0.2, seed=0)
    assert len(X_test) == 10 and len(X_train) == 40
    assert np.bincount(y_test).tolist() == [8, 2]
    rows = sorted(map(tuple, np.concatenate([X_train, X_test])))
    assert rows == sorted(map(tuple, X))
    np.testing.assert_array_equal(y_train, y[X_train[:, 0] // 2])  # rows keep their labels
    np.testing.assert_array_equal(y_test, y[X_test[:, 0] // 2])


def test_train_test_split_refuses_to_stratify_regression_targets():
    X = np.zeros((5, 1))
    with pytest.raises(ValueError, match=r"class .* has 1.*stratify=False"):
        data.train_test_split(X, np.arange(5.0))
    assert len(data.train_test_split(X, np.arange(5.0), test_size=0.4, stratify=False)[1]) == 2


def test_train_test_split_names_both_lengths_on_mismatch():
    with pytest.raises(ValueError, match=r"X has 5 samples.*y has 4"):
        data.train_test_split(np.zeros((5, 2)), np.zeros(4))


def test_standardise_uses_training_statistics_and_guards_constant_features():
    X_train = np.array([[1.0, 5.0], [3.0, 5.0]])
    X_test = np.array([[5.0, 7.0]])
    tr, te = data.standardise(X_train, X_test)
    np.testing.assert_allclose(tr, [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(te, [[3.0, 2.0]])  # (5-2)/1 and, unscaled, 7-5


def test_standardise_rejects_mismatched_feature_counts():
    with pytest.raises(ValueError, match=r"X_test has shape \(1, 3\).*\(2, 2\)"):
        data.standardise(np.zeros((2, 2)), np.zeros((1, 3)))


# ----------------------------------------------------------------------------- one_hot


def test_one_hot_puts_a_single_one_in_the_label_column():
    out = data.one_hot([2, 0, 1, 2])
    np.testing.assert_array_equal(
        out, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    )
    assert data.one_hot([0, 1], num_classes=4).shape == (2, 4)


def test_one_hot_label_out_of_range_names_label_and_class_count():
    with pytest.raises(ValueError, match=r"label 5 .* 3 classes"):
        data.one_hot([0, 5, 1], num_classes=3)
    with pytest.raises(ValueError, match=r"label -1 .* 2 classes"):
        data.one_hot([-1, 1], num_classes=2)


def test_one_hot_rejects_fractional_labels():
    with pytest.raises(TypeError, match="integer class indices"):
        data.one_hot([0.5, 1.0])


# ----------------------------------------------------------------------------- minibatches


def test_minibatches_is_a_generator_covering_every_sample_once():
    X = np.arange(20).reshape(10, 2)
    y = np.arange(10)
    batches = data.minibatches(X, y, 4, rng=0)
    assert inspect.isgenerator(batches)
    batches = list(batches)
    assert [len(yb) for _, yb in batches] == [4, 4, 2]
    seen = np.concatenate([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(10))
    assert seen.tolist() != list(range(10))  # shuffled
    for Xb, yb in batches:
        np.testing.assert_array_equal(Xb, X[yb])  # rows stay paired with their labels


def test_minibatches_shuffle_is_reproducible_by_seed():
    X, y = np.zeros((50, 1)), np.arange(50)
    first = [yb.tolist() for _, yb in data.minibatches(X, y, 8, rng=3)]
    again = [yb.tolist() for _, yb in data.minibatches(X, y, 8, rng=3)]
    other = [yb.tolist() for _, yb in data.minibatches(X, y, 8, rng=4)]
    assert first == again != other


def test_minibatches_without_shuffle_keep_the_order():
    y = np.arange(7)
    got = [yb.tolist() for _, yb in data.minibatches(np.zeros((7, 3)), y, 3, shuffle=False)]
    assert got == [[0, 1, 2], [3, 4, 5], [6]]


def test_minibatches_mismatched_lengths_raise_at_the_call_naming_both():
    with pytest.raises(ValueError, match=r"X has 10 samples.*y has 9"):
        data.minibatches(np.zeros((10, 2)), np.zeros(9), 4)


@pytest.mark.parametrize("bad", [0, -2, 2.5])
def test_minibatches_rejects_a_bad_batch_size(bad):
    with pytest.raises(ValueError, match=f"batch_size must be a positive integer, got {bad}"):
        data.minibatches(np.zeros((4, 1)), np.zeros(4), bad)


def test_data_names_are_exported_from_bplib():
    for name in ["truth_table", "make_moons", "make_circles", "make_spirals", "load_digits",
                 "load_breast_cancer", "load_diabetes", "train_test_split", "standardise",
                 "one_hot", "minibatches", "Split"]:
        assert getattr(bplib, name) is getattr(data, name)
