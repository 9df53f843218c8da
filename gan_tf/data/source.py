"""Data sources: built-in datasets, folders of image files and any TFDS image dataset.

`open_source(spec, ...)` turns a `--dataset` value into a `DataSource`:

* a built-in name (`mnist_5k`, `mnist`, `fashion_mnist`, `cifar10`; see `gan_tf.data`);
* `folder:PATH`: every JPEG, PNG, BMP, GIF and WebP file under `PATH`, searched recursively.
  When every image sits in a sub-folder, the sorted names of the top-level sub-folders are the
  classes; otherwise the data are unlabelled. Files with other extensions are ignored (and
  counted in the summary). Every image file is decoded once, up front, with Pillow: a file
  that does not decode (corrupt, truncated, not an image despite its name) is **skipped**,
  with a warning that counts them and names the first few.
* `tfds:NAME[:SPLIT]`: a TensorFlow Datasets image dataset; its image feature (and class label,
  if it has one) are found from the builder's info.
* image-to-image data (`edges2fashion`, `thin2bold_mnist`, `pairs:PATH`, `unpaired:PATH`,
  `tfds:cycle_gan/NAME`): `gan_tf.data.pairs`.
* melodies (`bach_chorales`, `midi:PATH`): `gan_tf.data.melodies`.

Resize policy (`image_size`, `S` or `(H, W)`): with `crop="center"` (the default) each image is
scaled, keeping its aspect ratio, until it covers `H x W` (for a square size: its shorter side
becomes S), then the centre `H x W` is cut out; with `crop="none"` it is resized to `H x W`,
aspect ratio not kept. Resizing is bilinear with antialiasing. Images already `H x W` are left
as they are. Without `image_size` the data's native size is used when every image has it;
otherwise the error names the sizes found. `channels` 1 or 3 converts either way (luma
weights 0.299, 0.587, 0.114 to greyscale; alpha dropped); by default 1 when every image is
greyscale, else 3.

Small data are decoded once into memory and served by `gan_tf.data.make_dataset`'s fast
index-batch pipeline; data whose decoded pixels would exceed `memory_limit_bytes` (512 MiB by
default) stream from disk: a full shuffle of the file list each epoch, parallel decode and
resize, an optional on-disk cache of the decoded images (`cache_dir`: filled in one shuffled
order, then mixed each epoch by a shuffle buffer of `shuffle_buffer` images), batching and prefetch. Memory then does not grow with the number of
images. `DataSource.summary` says which path was taken.
"""

import concurrent.futures
import dataclasses
import hashlib
import logging
import os
import re

import numpy as np
import tensorflow as tf

from gan_tf.data import builtin as gan_data
from gan_tf.data.builtin import DatasetError, DatasetInfo, DatasetUnavailableError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
CROPS = ("center", "none")
DEFAULT_MEMORY_LIMIT = 512 * 2**20
DEFAULT_SHUFFLE_BUFFER = 2048
# Probed before tfds tries a download, so an offline machine fails in seconds.
_TFDS_PROBE_HOST = ("storage.googleapis.com", 443)
_NAMED_SKIPS = 5


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


def check_spec(spec):
    """Raises `ValueError` if `spec` is not a built-in name, `folder:PATH` or `tfds:NAME[:SPLIT]`."""
    from gan_tf.data.captions import is_caption_spec
    from gan_tf.data.melodies import is_melody_spec
    from gan_tf.data.pairs import BUILT_INS, is_translation_spec

    if spec in gan_data.DATASETS or is_translation_spec(spec) or is_melody_spec(spec) or is_caption_spec(spec):
        return
    kind, _, rest = str(spec).partition(":")
    if kind in ("folder", "tfds") and rest:
        return
    raise ValueError(
        f"Unknown dataset {spec!r}. Choose a built-in ({', '.join(sorted(gan_data.DATASETS))}), "
        "folder:PATH (a directory of images) or tfds:NAME[:SPLIT]; image-to-image data: "
        f"{', '.join(BUILT_INS)}, pairs:PATH, unpaired:PATH or tfds:cycle_gan/NAME; melodies: bach_chorales "
        "or midi:PATH; captioned images: fashion_mnist_captions or captions:PATH."
    )


# ------------------------------------------------------------------------- image transforms


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


def decode_file(path, channels, size, crop):
    """Reads, decodes (first frame of a GIF), converts and resizes one image file."""
    image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
    return fit_to_size(convert_channels(image, channels), size, crop)


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
            return gan_data.make_dataset(self.images, self.labels, batch_size, value_range, seed=seed, repeat=repeat,
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
        return dataset.prefetch(tf.data.AUTOTUNE)

    def make_evaluator(self, num_samples, seed=0, inception_weights=None):
        """What scores a model's samples of these data every few epochs and in evaluate.py: a
        `gan_tf.metrics.evaluation.Evaluator` on the dataset's classifier features (Inception-v3's with
        `inception_weights`). Data of another kind bring their own (melodies: `gan_tf.
        melody_metrics.MelodyEvaluator`)."""
        from gan_tf.metrics.evaluation import Evaluator, features_for

        features = features_for(self, seed=seed, inception_weights=inception_weights)
        return Evaluator(self, num_samples, classifier=features, seed=seed)

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
        batches = list(self.stream(seed).take(count).batch(256).as_numpy_iterator())
        return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]).astype(np.int32)


def _key(*parts):
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


def _in_memory_by_size(num_examples, image_shape, memory_limit_bytes, in_memory):
    if in_memory is not None:
        return bool(in_memory)
    return num_examples * int(np.prod(image_shape)) <= memory_limit_bytes


def open_source(
    spec,
    data_dir=None,
    split="train",
    image_size=None,
    channels=None,
    crop="center",
    cache_dir=None,
    in_memory=None,
    memory_limit_bytes=DEFAULT_MEMORY_LIMIT,
    shuffle_buffer=DEFAULT_SHUFFLE_BUFFER,
):
    """Opens a dataset by its `--dataset` spec (see the module docstring).

    Args:
        spec: a built-in name, `folder:PATH` or `tfds:NAME[:SPLIT]`.
        data_dir: for built-ins, a directory of original files or a tfds data_dir; for
            `tfds:`, the tfds data_dir.
        split: "train" or "test" for built-ins; the default split of `tfds:` specs without one.
        image_size: None (native size), S, "HxW" or `(H, W)`.
        channels: None (the data's own: 1 if every image is greyscale, else 3), 1 or 3.
        crop: "center" or "none" (see the resize policy).
        cache_dir: streaming sources cache decoded images here (None: no cache).
        in_memory: None decides by size; True or False forces a path.
        memory_limit_bytes: decoded size up to which data are held in memory.
        shuffle_buffer: images in the shuffle buffer after a cache.

    Returns:
        A `DataSource`.

    Raises:
        ValueError: for a malformed spec, size, channel count or crop.
        DatasetError: for data that cannot be read (missing or empty folder, no images, ...).
        DatasetUnavailableError: for data that cannot be had here (tfds offline).
    """
    check_spec(spec)
    size = parse_image_size(image_size)
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 or 3. Received: {channels!r}")
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}. Received: {crop!r}")
    options = dict(size=size, channels=channels, crop=crop, cache_dir=cache_dir, in_memory=in_memory,
                   memory_limit_bytes=memory_limit_bytes, shuffle_buffer=shuffle_buffer)
    kind, _, rest = spec.partition(":")
    from gan_tf.data.pairs import is_translation_spec, open_translation_source

    if is_translation_spec(spec):
        return open_translation_source(spec, data_dir=data_dir, image_size=size, channels=channels, crop=crop)
    from gan_tf.data.melodies import is_melody_spec, open_melody_source

    if is_melody_spec(spec):
        return open_melody_source(spec)
    from gan_tf.data.captions import is_caption_spec, open_caption_source

    if is_caption_spec(spec):
        return open_caption_source(spec, data_dir=data_dir, image_size=size, channels=channels, crop=crop)
    if spec in gan_data.DATASETS:
        source = _builtin_source(spec, data_dir, split, **options)
    elif kind == "folder":
        source = _folder_source(spec, rest, **options)
    else:
        name, _, tfds_split = rest.partition(":")
        source = _tfds_source(spec, name, tfds_split or split, data_dir, **options)
    if source.in_memory:
        source.info = dataclasses.replace(source.info, examples=_image_examples(source, data_dir, split, options))
    if source.labelled:
        source.info = dataclasses.replace(source.info, classifier=lambda: _classifier_of(source))
    return source


def _classifier_of(source):
    from gan_tf.metrics.evaluation import features_for

    return features_for(source)


# Held-out images a model that works on images (SRGAN) keeps for previews and evaluation.
MAX_EXAMPLES = 2000


def _image_examples(source, data_dir, split, options):
    """`Examples` of image data: up to `MAX_EXAMPLES` images of a built-in's test split (a seeded
    draw), or, for data without one, of the training images themselves. No inputs: a model that
    derives its inputs from images (SRGAN's downsampling) makes them."""
    from gan_tf.data.pairs import Examples

    held_out = source
    if source.spec in gan_data.DATASETS and split == "train":
        try:
            held_out = _builtin_source(source.spec, data_dir, "test", **options)
        except DatasetError:  # mnist_5k has one split; tfds offline may lack the test split
            held_out = source
    images, labels = held_out.arrays(max_examples=MAX_EXAMPLES, seed=0)
    return Examples(inputs=None, input_labels=None, targets=images,
                    target_labels=labels if source.labelled else None, aligned=False)


def _transform_arrays(images, channels, size, crop, batch=512):
    """Applies the channel conversion and resize policy to uint8 arrays, in batches."""
    if (channels is None or channels == images.shape[-1]) and (size is None or tuple(images.shape[1:3]) == size):
        return images
    channels = channels or images.shape[-1]
    transform = tf.function(lambda image: fit_to_size(convert_channels(image, channels), size, crop))
    dataset = tf.data.Dataset.from_tensor_slices(images).map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    return np.concatenate(list(dataset.batch(batch).as_numpy_iterator()))


def _builtin_source(spec, data_dir, split, size, channels, crop, **options):
    images, labels = gan_data.load_arrays(spec, data_dir=data_dir, split=split)
    images = _transform_arrays(images, channels, size, crop)
    info = DatasetInfo(tuple(images.shape[1:]), gan_data.DATASETS[spec].num_classes, gan_data.DATASETS[spec].class_names)
    return DataSource(
        spec=spec, info=info, num_examples=len(images), in_memory=True, images=images, labels=labels,
        summary=f"{spec}: {len(images):,} images {_shape_text(info.image_shape)}, {info.num_classes} classes, in memory",
        content_key=_key(spec, split, info.image_shape, crop),
    )


def _shape_text(image_shape):
    return "x".join(str(d) for d in image_shape)


# ---------------------------------------------------------------------------------- folders


def _probe_image(path, draft_size):
    """`(height, width, channels)` of an image file after a full decode, or the error text."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            bands = 3 if image.mode == "P" else len(image.getbands())  # palettes decode to RGB(A)
            if draft_size is not None and image.format == "JPEG":
                image.draft(image.mode, (draft_size[1], draft_size[0]))  # decode at a reduced scale
            image.load()
            return height, width, bands
    except Exception as error:  # Pillow raises many kinds for bad files
        return f"{type(error).__name__}: {error}"


def scan_folder(root, draft_size=None, workers=8):
    """Finds and checks the image files under `root`.

    Returns:
        `(paths, labels, class_names, shapes, skipped, ignored)`: the decodable image files
        (sorted), their class ids (all 0 when unlabelled), the class names (empty when
        unlabelled), their `(h, w, c)` shapes, `[(path, error)]` of image files that do not
        decode, and the paths of files that are not images by their extension.

    Raises:
        DatasetError: for a missing or empty folder, or one with no decodable image.
    """
    if not os.path.exists(root):
        raise DatasetError(f"Image folder not found: {root}")
    if not os.path.isdir(root):
        raise DatasetError(f"Not a folder: {root} (folder:PATH takes a directory of images)")
    candidates, ignored = [], []
    for directory, subdirectories, files in os.walk(root, followlinks=True):
        subdirectories.sort()
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = os.path.join(directory, name)
            (candidates if name.lower().endswith(IMAGE_EXTENSIONS) else ignored).append(path)
    if not candidates:
        what = f"{len(ignored)} files, none of them an image" if ignored else "nothing"
        raise DatasetError(
            f"No image files in {root} (it holds {what}; images are {', '.join(IMAGE_EXTENSIONS)})"
        )
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        probes = list(pool.map(lambda p: _probe_image(p, draft_size), candidates))
    paths, shapes, skipped = [], [], []
    for path, probe in zip(candidates, probes):
        if isinstance(probe, str):
            skipped.append((path, probe))
        else:
            paths.append(path)
            shapes.append(probe)
    if not paths:
        raise DatasetError(f"None of the {len(candidates)} image files in {root} decodes; the first: {skipped[0][0]}: {skipped[0][1]}")
    relative = [os.path.relpath(p, root) for p in paths]
    labelled = all(os.sep in r for r in relative)
    class_names = sorted({r.split(os.sep)[0] for r in relative}) if labelled else []
    index = {name: i for i, name in enumerate(class_names)}
    labels = [index[r.split(os.sep)[0]] if labelled else 0 for r in relative]
    return paths, np.asarray(labels, np.int32), class_names, shapes, skipped, ignored


def _native_size(spec, shapes):
    sizes = sorted({(h, w) for h, w, _ in shapes})
    if len(sizes) == 1:
        return sizes[0]
    shown = ", ".join(f"{h}x{w}" for h, w in sizes[:5]) + (f" and {len(sizes) - 5} more" if len(sizes) > 5 else "")
    raise DatasetError(
        f"{spec} holds images of {len(sizes)} sizes ({shown}); choose one with --image_size=S or HxW"
    )


def _folder_source(spec, root, size, channels, crop, cache_dir, in_memory, memory_limit_bytes, shuffle_buffer):
    paths, labels, class_names, shapes, skipped, ignored = scan_folder(root, draft_size=size)
    if skipped:
        named = "; ".join(f"{path} ({error})" for path, error in skipped[:_NAMED_SKIPS])
        logger.warning("%s: skipped %d image file(s) that do not decode: %s%s", spec, len(skipped), named,
                       " ..." if len(skipped) > _NAMED_SKIPS else "")
    if size is None:
        size = _native_size(spec, shapes)
    if channels is None:
        channels = 1 if all(c in (1, 2) for _, _, c in shapes) else 3
    image_shape = (size[0], size[1], channels)
    info = DatasetInfo(image_shape, len(class_names), tuple(class_names))
    content_key = _key(spec, len(paths), sum(os.path.getsize(p) for p in paths), max(os.path.getmtime(p) for p in paths),
                       image_shape, crop)
    memory = _in_memory_by_size(len(paths), image_shape, memory_limit_bytes, in_memory)
    labels_text = f"{len(class_names)} classes ({', '.join(class_names[:5])}{', ...' if len(class_names) > 5 else ''})" if class_names else "unlabelled"
    notes = []
    if skipped:
        notes.append(f"{len(skipped)} undecodable skipped")
    if ignored:
        notes.append(f"{len(ignored)} non-image files ignored")
    summary = (
        f"{spec}: {len(paths):,} images -> {_shape_text(image_shape)} (crop={crop}), {labels_text}"
        + (f", {', '.join(notes)}" if notes else "")
        + (", decoded into memory" if memory else f", streaming from disk ({'cached in ' + cache_dir if cache_dir else 'no cache'})")
    )

    def stream(seed=None):
        files = tf.data.Dataset.from_tensor_slices((paths, labels))
        # A full shuffle of the file list is cheap: a new order every epoch. With a cache the
        # order is fixed (one shuffle, so the cache is not sorted by class folder) and the
        # buffer after the cache mixes each epoch.
        files = files.shuffle(len(paths), seed=seed if seed is not None else 0 if cache_dir else None,
                              reshuffle_each_iteration=not cache_dir)
        decoded = files.map(
            lambda path, label: (decode_file(path, channels, size, crop), label),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=seed is not None,
        )
        # A file Pillow read but TensorFlow cannot decode is dropped rather than ending the run.
        return decoded.ignore_errors()

    source = DataSource(
        spec=spec, info=info, num_examples=len(paths), in_memory=memory, summary=summary,
        labels=labels, stream=stream, content_key=content_key, cache_dir=cache_dir, shuffle_buffer=shuffle_buffer,
    )
    if memory:
        batches = list(
            tf.data.Dataset.from_tensor_slices((paths, labels))
            .map(lambda path, label: (decode_file(path, channels, size, crop), label), num_parallel_calls=tf.data.AUTOTUNE)
            .ignore_errors()
            .batch(256)
            .as_numpy_iterator()
        )
        source.images = np.concatenate([b[0] for b in batches]) if batches else np.zeros((0,) + image_shape, np.uint8)
        source.labels = np.concatenate([b[1] for b in batches]).astype(np.int32) if batches else labels[:0]
        if len(source.images) < len(paths):
            logger.warning("%s: skipped %d image file(s) that TensorFlow cannot decode", spec, len(paths) - len(source.images))
            source.num_examples = len(source.images)
        if not len(source.images):
            raise DatasetError(f"None of the image files in {root} decodes with TensorFlow")
        source.stream = None
    return source


# ------------------------------------------------------------------------------------- tfds


def _tfds_source(spec, name, split, data_dir, size, channels, crop, cache_dir, in_memory, memory_limit_bytes, shuffle_buffer):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises DatasetNotFoundError and friends
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DatasetError(f"No TFDS dataset {name!r}: {first_line}") from None
    image_key, label_key = _tfds_features(builder.info.features, spec)
    if not builder.is_prepared():
        if not gan_data._can_reach(*_TFDS_PROBE_HOST):
            raise DatasetUnavailableError(
                f"Dataset {spec!r} is not available{f' (data_dir={data_dir})' if data_dir else ''}: "
                "tfds has not prepared it and cannot download it (no internet). Offline options: "
                "a tfds data_dir where it is already prepared (--data_dir), folder:PATH with its "
                "images, or a built-in such as mnist_5k, which needs no internet."
            )
        builder.download_and_prepare()
    splits = builder.info.splits
    if splits and split not in splits:
        raise DatasetError(f"{spec}: no split {split!r}; it has {', '.join(sorted(splits))}")
    image_feature = builder.info.features[image_key]
    native = tuple(image_feature.shape)
    feature_channels = native[-1] if native and native[-1] is not None else 3
    channels = channels or (1 if feature_channels == 1 else 3)
    if size is None:
        if native[0] is None or native[1] is None:
            raise DatasetError(
                f"{spec} holds images of varying sizes (its image feature is {native}); choose one "
                "with --image_size=S or HxW"
            )
        size = (native[0], native[1])
    image_shape = (size[0], size[1], channels)
    class_names = tuple(builder.info.features[label_key].names) if label_key else ()
    # Unknown when the builder's info lists no splits (tfds.testing.mock_data): read it whole.
    num_examples = int(splits[split].num_examples) if splits else None
    memory = True if num_examples is None else _in_memory_by_size(num_examples, image_shape, memory_limit_bytes, in_memory)

    def stream(seed=None):
        read_config = tfds.ReadConfig(shuffle_seed=seed, shuffle_reshuffle_each_iteration=True)
        examples = builder.as_dataset(split=split, shuffle_files=not cache_dir, read_config=read_config)
        return examples.map(
            lambda example: (
                fit_to_size(convert_channels(example[image_key], channels), size, crop),
                tf.cast(example[label_key], tf.int32) if label_key else tf.constant(0, tf.int32),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    info = DatasetInfo(image_shape, len(class_names), class_names)
    source = DataSource(
        spec=spec, info=info, num_examples=num_examples, in_memory=memory,
        summary=(f"{spec}: {num_examples or 0:,} images -> {_shape_text(image_shape)} (crop={crop}), "
                 + (f"{len(class_names)} classes" if class_names else "unlabelled")
                 + (", in memory" if memory else ", streaming from disk")),
        stream=stream, content_key=_key(spec, data_dir, num_examples, image_shape, crop),
        cache_dir=cache_dir, shuffle_buffer=shuffle_buffer,
    )
    if memory:
        batches = list(stream(0).batch(1024).as_numpy_iterator())
        if not batches:
            raise DatasetError(f"{spec} has no examples in split {split!r}")
        source.images = np.concatenate([b[0] for b in batches])
        source.labels = np.concatenate([b[1] for b in batches]).astype(np.int32)
        source.num_examples = len(source.images)
        source.summary = source.summary.replace(f": {num_examples or 0:,} images", f": {len(source.images):,} images", 1)
        source.stream = None
    return source


def _tfds_features(features, spec):
    """Names of the top-level image feature and class label feature (None if there is none)."""
    import tensorflow_datasets as tfds

    items = list(features.items()) if hasattr(features, "items") else []
    images = [key for key, feature in items if isinstance(feature, tfds.features.Image)]
    labels = [key for key, feature in items if isinstance(feature, tfds.features.ClassLabel)]
    if not images:
        raise DatasetError(f"{spec} has no image feature (its features: {', '.join(k for k, _ in items) or 'none'})")
    preferred = "image" if "image" in images else images[0]
    label = "label" if "label" in labels else (labels[0] if labels else None)
    return preferred, label
