import gzip
import os
import struct
import time

import numpy as np
import pytest

from gan_tf.data import builtin as data
from gan_tf.data import make_dataset


def write_idx(path, array, compress=True):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def write_idx_split(directory, images, labels, split="train"):
    image_stem, label_stem = data._IDX_FILES[split]
    write_idx(os.path.join(directory, image_stem + ".gz"), images)
    write_idx(os.path.join(directory, label_stem + ".gz"), labels)


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trips(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = str(tmp_path / ("x.idx.gz" if compress else "x.idx"))
    write_idx(path, array, compress)
    got = data.read_idx(path)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, array)


def test_read_idx_names_a_truncated_file(tmp_path):
    path = str(tmp_path / "train-images-idx3-ubyte")
    write_idx(path, np.ones((3, 4, 4)), compress=False)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 5)
    with pytest.raises(data.DatasetError, match="Truncated.*train-images-idx3-ubyte"):
        data.read_idx(path)


def test_read_idx_names_a_truncated_gzip(tmp_path):
    path = str(tmp_path / "labels.gz")
    write_idx(path, np.arange(1000) % 10)
    content = open(path, "rb").read()
    open(path, "wb").write(content[: len(content) // 2])
    with pytest.raises(data.DatasetError, match="labels.gz"):
        data.read_idx(path)


def test_read_idx_rejects_a_file_that_is_not_idx(tmp_path):
    path = str(tmp_path / "notes.txt")
    open(path, "w").write("hello world")
    with pytest.raises(data.DatasetError, match="bad magic.*notes.txt"):
        data.read_idx(path)


def test_load_arrays_reads_idx_files_from_data_dir(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(6, 28, 28)).astype(np.uint8)
    labels = np.array([0, 1, 2, 3, 4, 5])
    write_idx_split(str(tmp_path), images, labels)
    got_images, got_labels = data.load_arrays("fashion_mnist", data_dir=str(tmp_path))
    assert got_images.shape == (6, 28, 28, 1) and got_images.dtype == np.uint8
    np.testing.assert_array_equal(got_images[..., 0], images)
    np.testing.assert_array_equal(got_labels, labels)


def test_load_arrays_reads_unpacked_idx_files_spelled_with_a_dot(tmp_path):
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28).astype(np.uint8)
    write_idx(str(tmp_path / "t10k-images.idx3-ubyte"), images, compress=False)
    write_idx(str(tmp_path / "t10k-labels.idx1-ubyte"), np.array([7, 2]), compress=False)
    got_images, got_labels = data.load_arrays("mnist", data_dir=str(tmp_path), split="test")
    np.testing.assert_array_equal(got_images[..., 0], images)
    np.testing.assert_array_equal(got_labels, [7, 2])


def test_load_arrays_names_a_missing_label_file(tmp_path):
    write_idx(str(tmp_path / "train-images-idx3-ubyte.gz"), np.zeros((2, 28, 28)))
    with pytest.raises(data.DatasetError, match="no train-labels-idx1-ubyte"):
        data.load_arrays("mnist", data_dir=str(tmp_path))


def test_load_arrays_rejects_idx_files_that_do_not_pair(tmp_path):
    write_idx_split(str(tmp_path), np.zeros((6, 28, 28)), np.zeros(5))
    with pytest.raises(data.DatasetError, match="do not pair"):
        data.load_arrays("mnist", data_dir=str(tmp_path))


def test_load_arrays_reads_cifar10_binary_batches(tmp_path):
    rng = np.random.default_rng(0)
    for name in data._CIFAR_FILES["train"]:
        records = rng.integers(0, 256, size=(3, 1 + 3072)).astype(np.uint8)
        records[:, 0] %= 10
        records.tofile(str(tmp_path / name))
    images, labels = data.load_arrays("cifar10", data_dir=str(tmp_path))
    assert images.shape == (15, 32, 32, 3) and labels.shape == (15,)
    first = np.fromfile(str(tmp_path / "data_batch_1.bin"), dtype=np.uint8)[: 1 + 3072]
    assert labels[0] == first[0]
    np.testing.assert_array_equal(images[0, :, :, 0].reshape(-1), first[1 : 1 + 1024])


def test_mnist_5k_is_the_embedded_real_digits():
    images, labels = data.load_arrays("mnist_5k")
    assert images.shape == (5000, 28, 28, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels), [500] * 10)
    # Real digits: dark background, bright strokes (MNIST's mean pixel is about 33).
    assert 20 < images.mean() < 45 and images.max() == 255


@pytest.mark.skipif(
    not os.path.isdir(data.DEBIAN_FASHION_MNIST_DIR),
    reason="Debian's dataset-fashion-mnist is not installed (.ci/run installs it)",
)
def test_fashion_mnist_reads_debian_package_offline():
    images, labels = data.load_arrays("fashion_mnist", split="test")
    assert images.shape == (10000, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(labels), [1000] * 10)


def test_unavailable_dataset_fails_fast_naming_offline_options(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_can_reach", lambda host, port, **kwargs: False)
    start = time.time()
    with pytest.raises(data.DatasetUnavailableError, match="mnist_5k") as error:
        data.load_arrays("mnist", data_dir=str(tmp_path))
    assert "--data_dir" in str(error.value)
    assert time.time() - start < 10


def test_tfds_path_downloads_prepares_and_loads(monkeypatch):
    import tensorflow_datasets as tfds

    # mock_data stands in for tfds's download_and_prepare / as_dataset (no network here).
    monkeypatch.setattr(data, "_can_reach", lambda host, port, **kwargs: True)
    with tfds.testing.mock_data(num_examples=12):
        images, labels = data.load_arrays("mnist")
    assert images.shape == (12, 28, 28, 1) and images.dtype == np.uint8
    assert labels.shape == (12,) and labels.max() < 10


def test_unknown_dataset_names_the_choices():
    with pytest.raises(ValueError, match="Unknown dataset 'svhn'.*mnist_5k"):
        data.load_arrays("svhn")


@pytest.mark.parametrize("value_range", [(-1.0, 1.0), (0.0, 1.0)])
def test_make_dataset_scales_batches_and_drops_the_remainder(value_range):
    images = np.array([0, 255, 51, 102, 153], dtype=np.uint8).reshape(5, 1, 1, 1) * np.ones((1, 4, 4, 1), np.uint8)
    labels = np.arange(5)
    batches = list(make_dataset(images, labels, batch_size=2, value_range=value_range, seed=0))
    assert len(batches) == 2
    seen = np.concatenate([b[0].numpy() for b in batches])
    assert seen.dtype == np.float32 and seen.shape == (4, 4, 4, 1)
    low, high = value_range
    expected = {round(low + (high - low) * v / 255.0, 5) for v in (0, 255, 51, 102, 153)}
    assert {round(float(v), 5) for v in seen[:, 0, 0, 0]} <= expected


def test_make_dataset_rejects_a_batch_larger_than_the_data():
    with pytest.raises(ValueError, match="larger than the dataset"):
        make_dataset(np.zeros((3, 2, 2, 1), np.uint8), np.zeros(3), batch_size=4)


def _epoch_labels(dataset):
    return np.concatenate([labels.numpy() for _, labels in dataset])


def test_make_dataset_shuffles_each_pass_reproducibly_and_keeps_images_with_their_labels():
    labels = np.arange(10)
    images = (labels * 20).astype(np.uint8).reshape(10, 1, 1, 1)
    dataset = make_dataset(images, labels, batch_size=3, value_range=(0.0, 255.0), seed=7)
    first, second = _epoch_labels(dataset), _epoch_labels(dataset)
    # Each pass: 3 full batches of distinct examples, a new order each pass.
    assert len(first) == len(set(first)) == 9 and len(set(second)) == 9
    assert not np.array_equal(first, second)
    # The same seed gives the same sequence of orders; another seed another one.
    again = make_dataset(images, labels, batch_size=3, value_range=(0.0, 255.0), seed=7)
    assert np.array_equal(_epoch_labels(again), first) and np.array_equal(_epoch_labels(again), second)
    other = make_dataset(images, labels, batch_size=3, value_range=(0.0, 255.0), seed=8)
    assert not np.array_equal(_epoch_labels(other), first)
    # Repeating draws a fresh order for every repetition; pixels still match labels.
    for batch_images, batch_labels in dataset.repeat(2):
        np.testing.assert_array_equal(batch_images.numpy().reshape(-1), batch_labels.numpy() * 20)


def test_make_dataset_without_shuffle_keeps_the_order():
    labels = np.arange(7)
    dataset = make_dataset(np.zeros((7, 2, 2, 1), np.uint8), labels, batch_size=2, shuffle=False)
    assert _epoch_labels(dataset).tolist() == [0, 1, 2, 3, 4, 5]


def test_make_dataset_with_repeat_streams_epoch_after_epoch_in_new_orders():
    labels = np.arange(10)
    images = np.zeros((10, 1, 1, 1), np.uint8)
    stream = make_dataset(images, labels, batch_size=5, seed=3, repeat=True)
    epochs = np.concatenate([b.numpy() for _, b in stream.take(8)]).reshape(4, 10)
    for epoch in epochs:
        assert sorted(epoch) == list(range(10))
    assert len({tuple(epoch) for epoch in epochs}) == 4
    # The first epoch is the one the finite pipeline yields first.
    finite = make_dataset(images, labels, batch_size=5, seed=3)
    np.testing.assert_array_equal(_epoch_labels(finite), epochs[0])


def test_keras_array_batches_train_as_fit_on_the_arrays():
    """The classifiers train on `keras_array_batches` instead of numpy arrays (which Keras would
    wrap in an autotuned pipeline): the same batches in the same order every epoch, so the same
    weights, and a classifier cached before keeps its meaning."""
    import keras

    from gan_tf.data.pipeline import keras_array_batches

    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(300, 4)).astype(np.float32)
    targets = rng.integers(0, 3, 300)

    def trained(feed):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        feed(model)
        return model.get_weights()

    on_arrays = trained(lambda model: model.fit(inputs, targets, batch_size=32, epochs=3, verbose=0))
    on_batches = trained(lambda model: model.fit(keras_array_batches(inputs, targets, 32), epochs=3, verbose=0))
    in_order = trained(lambda model: model.fit(keras_array_batches(inputs, targets, 32, shuffle=False), epochs=3,
                                               verbose=0))
    assert all(np.array_equal(a, b) for a, b in zip(on_arrays, on_batches))
    assert not all(np.allclose(a, b) for a, b in zip(on_arrays, in_order))  # the order matters
    assert keras_array_batches(inputs, targets, 32).options().autotune.enabled is False


def test_the_pipelines_run_without_autotuning(tmp_path):
    """Autotuning's model thread can keep a finished `fit` or `predict` waiting for seconds
    (bench/idle_tail.py): every pipeline gan_tf builds turns it off, the streaming one too."""
    from PIL import Image

    from gan_tf.data import open_source
    from gan_tf.data.pipeline import array_batches

    images = np.zeros((8, 2, 2, 1), np.uint8)
    assert make_dataset(images, np.zeros(8), batch_size=4).options().autotune.enabled is False
    assert array_batches(images, 4).options().autotune.enabled is False
    for index in range(8):
        Image.fromarray(np.full((4, 4), index, np.uint8)).save(tmp_path / f"{index}.png")
    streaming = open_source(f"folder:{tmp_path}", in_memory=False)
    assert streaming.dataset(4, seed=0).options().autotune.enabled is False
    assert len(streaming.arrays()[0]) == 8
