"""`DataSource`: a dataset ready to train on, whatever its kind; the resize policy every image
source applies; `SpecKind` and `OpenOptions`, what a kind of `--dataset` value registers
(`gan_tf.data.specs` lists the kinds).

Resize policy (`image_size`, `S` or `(H, W)`): with `crop="center"` (the default) each image is
scaled, keeping its aspect ratio, until it covers `H x W` (for a square size: its shorter side
becomes S), then the centre `H x W` is cut out; with `crop="none"` it is resized to `H x W`,
aspect ratio not kept. Resizing is bilinear with antialiasing. Images already `H x W` are left
as they are. Without `image_size` the data's native size is used when every image has it;
otherwise the error names the sizes found. `channels` 1 or 3 converts either way (luma
weights 0.299, 0.587, 0.114 to greyscale); by default 1 when every image is greyscale, else 3.
Image files are read as a viewer shows them (EXIF orientation, modes, transparency, first
frames, very large files: `gan_tf.data.image_files`).

Small data are decoded once into memory and served by `gan_tf.data.pipeline.make_dataset`'s
fast index-batch pipeline; data whose decoded pixels would exceed `memory_limit_bytes` (512 MiB
by default) stream from disk: a full shuffle of the file list each epoch, parallel decode and
resize, an optional on-disk cache of the decoded images (`cache_dir`: filled in one shuffled
order, then mixed each epoch by a shuffle buffer of `shuffle_buffer` images), batching and
prefetch. Memory then does not grow with the number of images. `DataSource.summary` says which
path was taken.
"""

import dataclasses
import hashlib
import logging
import os
import re
from typing import Callable

import numpy as np
import tensorflow as tf

from gan_tf.data.image_files import DEFAULT_MAX_PIXELS, ImageFileError, read_image, shown_path
from gan_tf.data.info import DatasetInfo
from gan_tf.data.pipeline import make_dataset, without_autotune

logger = logging.getLogger(__name__)

CROPS = ("center", "none")
DEFAULT_MEMORY_LIMIT = 512 * 2**20
DEFAULT_SHUFFLE_BUFFER = 2048


def default_cache_dir():
    """Where gan_tf caches what it computes once (classifiers, parsed corpora): `GAN_TF_CACHE`, or
    `~/.cache/gan_tf`."""
    return os.environ.get("GAN_TF_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gan_tf")


def parse_image_size(value):
    """`(H, W)` from `64`, `"64"`, `"64x48"` (H x W) or `(64, 48)`; None stays None."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        size = tuple(int(v) for v in value)
    elif isinstance(value, (int, np.integer)):
        size = (int(value), int(value))
    else:
        match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", str(value))
        if not match:
            raise ValueError(f"image_size must be S or HxW (e.g. 64 or 64x48). Received: {value!r}")
        size = (int(match.group(1)), int(match.group(2) or match.group(1)))
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"image_size must be two positive sizes. Received: {value!r}")
    return size


# ---------------------------------------------------------------------- the resize policy


def convert_channels(image, channels):
    """A `uint8 [h, w, c]` image (c in 1..4) as `channels` (1 or 3) channels; alpha dropped."""
    image = image[..., :3] if image.shape[-1] in (3, 4) else image[..., :1]
    if image.shape[-1] is None:  # unknown statically: decide at run time
        count = tf.shape(image)[-1]
        image = tf.cond(count >= 3, lambda: image[..., :3], lambda: tf.tile(image[..., :1], [1, 1, 3]))
    elif image.shape[-1] == 1:
        image = tf.tile(image, [1, 1, 3])
    if channels == 3:
        return tf.ensure_shape(image, [None, None, 3])
    luma = tf.tensordot(tf.cast(image, tf.float32), tf.constant([0.299, 0.587, 0.114]), axes=[[-1], [0]])
    return tf.cast(tf.clip_by_value(tf.round(luma), 0, 255), tf.uint8)[..., tf.newaxis]


def fit_to_size(image, size, crop="center"):
    """Resizes a `uint8 [h, w, c]` image to `size` `(H, W)` by the resize policy (module doc)."""
    if size is None:
        return image
    height, width = size
    shape = tf.shape(image)

    def resized():
        if crop == "none":
            target = tf.constant([height, width])
        else:  # cover H x W, keeping the aspect ratio, then cut out the centre
            h, w = tf.cast(shape[0], tf.float64), tf.cast(shape[1], tf.float64)
            scale = tf.maximum(height / h, width / w)
            target = tf.cast(tf.math.ceil(tf.stack([h * scale, w * scale]) - 1e-6), tf.int32)
            target = tf.maximum(target, [height, width])
        pixels = tf.image.resize(image, target, method="bilinear", antialias=True)
        pixels = tf.image.resize_with_crop_or_pad(pixels, height, width)
        return tf.cast(tf.clip_by_value(tf.round(pixels), 0.0, 255.0), tf.uint8)

    same = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
    fitted = tf.cond(same, lambda: tf.identity(image), resized)
    return tf.ensure_shape(fitted, [height, width, image.shape[-1]])


def decode_file(path, channels, size, crop, max_pixels=DEFAULT_MAX_PIXELS):
    """One image file as `uint8 [H, W, channels]`: read as a viewer shows it
    (`gan_tf.data.image_files.read_image`), then fitted to `size` by the resize policy.

    Raises:
        ImageFileError: for a file that is not read (the message says why).
    """
    return fit_to_size(tf.constant(read_image(path, channels, size, max_pixels)), size, crop)


def decode_files(files, channels, size, crop, max_pixels=DEFAULT_MAX_PIXELS, deterministic=True):
    """A `tf.data` map of `(path, label)` to `(uint8 [H, W, channels] image, label)`, each file
    read as `decode_file` reads it. A file that cannot be read now (deleted, replaced or
    damaged since the folder was scanned) is skipped with a logged warning, once per file, and
    the stream goes on (a repeated stream loses no step: the next file fills the batch)."""

    def read(path):
        try:
            return read_image(path, channels, size, max_pixels)
        except ImageFileError as error:
            if path not in _skipped_while_reading:
                _skipped_while_reading.add(path)
                logger.warning("skipped %s while reading the data: %s", shown_path(path), error)
            return np.zeros((0, 0, channels), np.uint8)

    def read_tensor(path, label):
        image = tf.numpy_function(read, [path], tf.uint8)
        return tf.ensure_shape(image, [None, None, channels]), label

    return (files.map(read_tensor, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
            .filter(lambda image, label: tf.size(image) > 0)
            .map(lambda image, label: (fit_to_size(image, size, crop), label), num_parallel_calls=tf.data.AUTOTUNE,
                 deterministic=deterministic))


_skipped_while_reading = set()


def transform_arrays(images, channels, size, crop, batch=512):
    """Applies the channel conversion and resize policy to uint8 arrays, in batches."""
    if (channels is None or channels == images.shape[-1]) and (size is None or tuple(images.shape[1:3]) == size):
        return images
    channels = channels or images.shape[-1]
    transform = tf.function(lambda image: fit_to_size(convert_channels(image, channels), size, crop))
    dataset = tf.data.Dataset.from_tensor_slices(images).map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    return np.concatenate(list(without_autotune(dataset.batch(batch)).as_numpy_iterator()))


# ------------------------------------------------------------------------------- the source


@dataclasses.dataclass
class DataSource:
    """A dataset ready to train on: what a model needs to know, and its `tf.data` pipeline.

    Attributes:
        spec: the `--dataset` value it was opened from.
        info: `DatasetInfo` (image shape after resizing, classes; `num_classes` 0 when
            unlabelled).
        num_examples: images it holds.
        in_memory: whether the images are decoded in memory (else they stream from disk).
        summary: one line saying what was found and which path was taken.
    """

    spec: str
    info: DatasetInfo
    num_examples: int
    in_memory: bool
    summary: str
    images: np.ndarray = None  # uint8 [N, H, W, C] when in memory
    labels: np.ndarray = None  # int32 [N]
    stream: object = None  # () -> tf.data.Dataset of (uint8 image, int32 label), when streaming
    content_key: str = ""  # identifies the data (for caches keyed by content)
    cache_dir: str = None
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER
    # A built-in dataset whose classifier judges these data too (they hold its images:
    # fashion_mnist_captions is Fashion-MNIST with captions), or None: the data's own.
    judged_as: str = None

    @property
    def labelled(self):
        return self.info.num_classes > 0

    def dataset(self, batch_size, value_range=(-1.0, 1.0), seed=None, repeat=False, start_batch=0):
        """`(float32 images in value_range, int32 labels)` batches, full batches only.

        Unlabelled data yield label 0 for every image (unconditional models ignore labels).
        With a `seed` the stream is the same in every process, and `start_batch=b` gives the
        stream after its first `b` batches (how a resumed run continues with the data it would
        have seen): in memory at no cost; streaming data read and drop those batches, at the
        pipeline's rate (hundreds of times the training rate: bench/throughput.py).
        """
        if self.in_memory:
            return make_dataset(self.images, self.labels, batch_size, value_range, seed=seed, repeat=repeat,
                                         start_batch=start_batch)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1. Received: {batch_size}")
        if batch_size > self.num_examples:
            raise ValueError(
                f"batch_size {batch_size} is larger than the dataset ({self.num_examples} examples): "
                "with the remainder dropped no batch would be left"
            )
        low, high = value_range
        scale = (high - low) / 255.0
        dataset = self.stream(seed)
        if self.cache_dir:
            os.makedirs(self.cache_dir, exist_ok=True)
            dataset = dataset.cache(os.path.join(self.cache_dir, f"gan_tf-{self.content_key}"))
            dataset = dataset.shuffle(self.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        dataset = dataset.batch(batch_size, drop_remainder=True).skip(start_batch)
        dataset = dataset.map(
            lambda images, labels: (tf.cast(images, tf.float32) * scale + low, labels),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        return without_autotune(dataset.prefetch(tf.data.AUTOTUNE))

    def subset(self, max_examples, seed=0):
        """This source cut to a seeded draw of at most `max_examples` images (with their labels),
        in memory: small data on purpose, to measure and to use data-efficient training. The
        same `seed` draws the same images in every process. Sources that carry more per example
        (pairs, captions) do not cut themselves yet and say so.
        """
        if type(self) is not DataSource:
            raise ValueError(f"max_examples takes image data; {self.spec} holds more per example than images "
                             "and labels, and cannot be cut yet.")
        if max_examples < 1:
            raise ValueError(f"max_examples must be at least 1. Received: {max_examples}")
        if max_examples >= self.num_examples:
            return self
        images, labels = self.arrays(max_examples, seed)
        return dataclasses.replace(
            self, images=images, labels=labels, num_examples=len(images), in_memory=True, stream=None,
            content_key=content_key_of(self.content_key, "subset", len(images), seed),
            summary=f"{self.summary}; training on a seeded draw of {len(images):,} of its {self.num_examples:,} images",
        ).with_training_images()

    def with_training_images(self):
        """This source, its `info.training_images` drawing from its own images (`arrays`)."""
        self.info = dataclasses.replace(self.info, training_images=lambda max_examples, seed: self.arrays(max_examples, seed)[0])
        return self

    def arrays(self, max_examples=None, seed=0):
        """`(uint8 images, int32 labels)` in memory: all of them, or a seeded draw of at most
        `max_examples` (for evaluation and classifiers)."""
        if self.in_memory:
            images, labels = self.images, self.labels
            if max_examples is not None and len(images) > max_examples:
                keep = np.sort(np.random.default_rng(seed).permutation(len(images))[:max_examples])
                images, labels = images[keep], labels[keep]
            return images, labels
        count = self.num_examples if max_examples is None else min(max_examples, self.num_examples)
        batches = list(without_autotune(self.stream(seed).take(count).batch(256)).as_numpy_iterator())
        return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]).astype(np.int32)


def content_key_of(*parts):
    """A short key that names data by what identifies their content (for caches)."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


def in_memory_by_size(num_examples, image_shape, memory_limit_bytes, in_memory):
    """Whether data are decoded into memory: as `in_memory` says, or when they fit the limit."""
    if in_memory is not None:
        return bool(in_memory)
    return num_examples * int(np.prod(image_shape)) <= memory_limit_bytes


def shape_text(image_shape):
    return "x".join(str(d) for d in image_shape)


# ------------------------------------------------------------------------ kinds of data


@dataclasses.dataclass(frozen=True)
class OpenOptions:
    """How `gan_tf.data.open_source` reads data (its arguments after the spec, checked); each kind
    of data uses those that apply to it."""

    data_dir: str = None
    split: str = "train"
    image_size: tuple = None  # (H, W), or None: the data's native size
    channels: int = None
    crop: str = "center"
    cache_dir: str = None
    in_memory: bool = None
    memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER


@dataclasses.dataclass(frozen=True)
class SpecKind:
    """One kind of `--dataset` value: each data module defines its own (`SPEC_KIND`), and
    `gan_tf.data.specs.SPEC_KINDS` lists them, which is all it takes to add a kind."""

    usage: str  # how its values are written (the unknown-dataset error lists every kind's)
    matches: Callable  # spec -> whether this kind reads it
    open: Callable  # (spec, OpenOptions) -> DataSource
