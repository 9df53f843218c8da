"""Image data: the built-in datasets, folders of image files and any TFDS image dataset.

* a built-in name (`mnist_5k`, `mnist`, `fashion_mnist`, `cifar10`; `gan_tf.data.builtin`);
* `folder:PATH`: every JPEG, PNG, BMP, GIF and WebP file under `PATH`, searched recursively.
  When every image sits in a sub-folder, the sorted names of the top-level sub-folders are the
  classes; otherwise the data are unlabelled. Files with other extensions are ignored (and
  counted in the summary). Every image file is read once, up front, as training reads it
  (`gan_tf.data.image_files`: as a viewer shows it): a file that does not read (corrupt,
  truncated, empty, unreadable, above the pixel limit, not an image despite its name) is
  **skipped**, and so are hidden files and folders and link loops, each kind with a warning
  that counts them and names the first few. A file that stops reading during a streaming run
  is skipped then, with a warning, and the run goes on.
* `tfds:NAME[:SPLIT]`: a TensorFlow Datasets image dataset; its image feature (and class label,
  if it has one) are found from the builder's info.

Each is read by the resize policy of `gan_tf.data.source`. Labelled data bring their own
classifier (`DatasetInfo.classifier`, `gan_tf.data.classifiers`), trained on first use.
"""

import concurrent.futures
import dataclasses
import logging
import os

import numpy as np
import tensorflow as tf

from gan_tf.data import builtin as gan_data, classifiers
from gan_tf.data.info import DatasetError, DatasetInfo, DatasetUnavailableError, Examples
from gan_tf.data.pipeline import without_autotune
from gan_tf.data.image_files import (DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, find_image_files, probe_image, shown_path,
                                     warn_skipped)
from gan_tf.data.source import (DataSource, SpecKind, content_key_of, convert_channels, decode_files, fit_to_size,
                                in_memory_by_size, shape_text, transform_arrays)

logger = logging.getLogger(__name__)

# Probed before tfds tries a download, so an offline machine fails in seconds.
_TFDS_PROBE_HOST = ("storage.googleapis.com", 443)


def is_image_spec(spec):
    """Whether a `--dataset` value names image data: a built-in, `folder:PATH` or `tfds:NAME[:SPLIT]`."""
    kind, _, rest = str(spec).partition(":")
    return spec in gan_data.DATASETS or (kind in ("folder", "tfds") and bool(rest))


def open_image_source(spec, options):
    """The `DataSource` of image data `spec` read with `options` (an `OpenOptions`), with its
    held-out examples when in memory, and its classifier when labelled."""
    kind, _, rest = spec.partition(":")
    readers = dict(size=options.image_size, channels=options.channels, crop=options.crop, cache_dir=options.cache_dir,
                   in_memory=options.in_memory, memory_limit_bytes=options.memory_limit_bytes,
                   shuffle_buffer=options.shuffle_buffer)
    if spec in gan_data.DATASETS:
        source = _builtin_source(spec, options.data_dir, options.split, **readers)
    elif kind == "folder":
        source = _folder_source(spec, rest, **readers, max_image_pixels=options.max_image_pixels)
    else:
        name, _, tfds_split = rest.partition(":")
        source = _tfds_source(spec, name, tfds_split or options.split, options.data_dir, **readers)
    if source.in_memory:
        source.info = dataclasses.replace(
            source.info, examples=_image_examples(source, options.data_dir, options.split, readers))
    if source.labelled:
        source.info = dataclasses.replace(source.info, classifier=lambda: classifiers.data_classifier(source))
    return source.with_training_images()


SPEC_KIND = SpecKind(
    f"a built-in ({', '.join(sorted(gan_data.DATASETS))}), folder:PATH (a directory of images) or tfds:NAME[:SPLIT]",
    is_image_spec, open_image_source)


# Held-out images a model that works on images (SRGAN) keeps for previews and evaluation.
MAX_EXAMPLES = 2000


def _image_examples(source, data_dir, split, options):
    """`Examples` of image data: up to `MAX_EXAMPLES` images of a built-in's test split (a seeded
    draw), or, for data without one, of the training images themselves. No inputs: a model that
    derives its inputs from images (SRGAN's downsampling) makes them."""
    held_out = source
    if source.spec in gan_data.DATASETS and split == "train":
        try:
            held_out = _builtin_source(source.spec, data_dir, "test", **options)
        except DatasetError:  # mnist_5k has one split; tfds offline may lack the test split
            held_out = source
    images, labels = held_out.arrays(max_examples=MAX_EXAMPLES, seed=0)
    return Examples(inputs=None, input_labels=None, targets=images,
                    target_labels=labels if source.labelled else None, aligned=False)


def _builtin_source(spec, data_dir, split, size, channels, crop, **options):
    images, labels = gan_data.load_arrays(spec, data_dir=data_dir, split=split)
    images = transform_arrays(images, channels, size, crop)
    info = DatasetInfo(tuple(images.shape[1:]), gan_data.DATASETS[spec].num_classes, gan_data.DATASETS[spec].class_names)
    return DataSource(
        spec=spec, info=info, num_examples=len(images), in_memory=True, images=images, labels=labels,
        summary=f"{spec}: {len(images):,} images {shape_text(info.image_shape)}, {info.num_classes} classes, in memory",
        content_key=content_key_of(spec, split, info.image_shape, crop),
    )


# ---------------------------------------------------------------------------------- folders


def scan_folder(root, size=None, max_pixels=DEFAULT_MAX_PIXELS, workers=8):
    """Finds and checks the image files under `root` (`gan_tf.data.image_files`' rules).

    Every image file is read once, in full, as training will read it (`size`: the size it is
    wanted at, for a reduced-scale decode; `max_pixels`: the pixel limit).

    Returns:
        `(paths, labels, class_names, shapes, skipped, scan)`: the image files that read
        (sorted), their class ids (all 0 when unlabelled), the class names (empty when
        unlabelled), their `(h, w, c)` shapes as read (upright), `[(path, reason)]` of image
        files that do not decode, and the `FolderScan` (hidden files, link loops, other files).

    Raises:
        DatasetError: for a missing or empty folder, or one with no image that reads.
    """
    if not os.path.exists(root):
        raise DatasetError(f"Image folder not found: {root}")
    if not os.path.isdir(root):
        raise DatasetError(f"Not a folder: {root} (folder:PATH takes a directory of images)")
    scan = find_image_files(root)
    if not scan.images:
        what = (f"{len(scan.ignored)} files, none of them an image" if scan.ignored
                else f"only {len(scan.hidden)} hidden file(s) and folder(s)" if scan.hidden else "nothing")
        raise DatasetError(
            f"No image files in {root} (it holds {what}; images are {', '.join(IMAGE_EXTENSIONS)})"
        )
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        probes = list(pool.map(lambda p: probe_image(p, size, max_pixels), scan.images))
    paths, shapes, skipped = [], [], []
    for path, probe in zip(scan.images, probes):
        if isinstance(probe, str):
            skipped.append((path, probe))
        else:
            paths.append(path)
            shapes.append(probe)
    if not paths:
        raise DatasetError(f"None of the {len(scan.images)} image files in {root} decodes; the first: "
                           f"{shown_path(skipped[0][0])}: {skipped[0][1]}")
    relative = [os.path.relpath(p, root) for p in paths]
    labelled = all(os.sep in r for r in relative)
    class_names = sorted({shown_path(r.split(os.sep)[0]) for r in relative}) if labelled else []
    index = {name: i for i, name in enumerate(class_names)}
    labels = [index[shown_path(r.split(os.sep)[0])] if labelled else 0 for r in relative]
    return paths, np.asarray(labels, np.int32), class_names, shapes, skipped, scan


def _native_size(spec, shapes):
    sizes = sorted({(h, w) for h, w, _ in shapes})
    if len(sizes) == 1:
        return sizes[0]
    shown = ", ".join(f"{h}x{w}" for h, w in sizes[:5]) + (f" and {len(sizes) - 5} more" if len(sizes) > 5 else "")
    raise DatasetError(
        f"{spec} holds images of {len(sizes)} sizes ({shown}); choose one with --image_size=S or HxW"
    )


def _folder_source(spec, root, size, channels, crop, cache_dir, in_memory, memory_limit_bytes, shuffle_buffer,
                   max_image_pixels=DEFAULT_MAX_PIXELS):
    paths, labels, class_names, shapes, skipped, scan = scan_folder(root, size, max_image_pixels)
    warn_skipped(spec, "image file(s) that do not decode", skipped)
    warn_skipped(spec, "hidden file(s) and folder(s)", [(path, "hidden") for path in scan.hidden])
    warn_skipped(spec, "folder(s) reached again through a link", [(path, "a link loop") for path in scan.loops])
    if size is None:
        size = _native_size(spec, shapes)
    if channels is None:
        channels = 1 if all(c == 1 for _, _, c in shapes) else 3
    image_shape = (size[0], size[1], channels)
    info = DatasetInfo(image_shape, len(class_names), tuple(class_names))
    content_key = content_key_of(spec, len(paths), sum(os.path.getsize(p) for p in paths), max(os.path.getmtime(p) for p in paths),
                       image_shape, crop)
    memory = in_memory_by_size(len(paths), image_shape, memory_limit_bytes, in_memory)
    labels_text = f"{len(class_names)} classes ({', '.join(class_names[:5])}{', ...' if len(class_names) > 5 else ''})" if class_names else "unlabelled"
    notes = ([f"{len(skipped)} undecodable skipped"] if skipped else []) + scan.notes()
    summary = (
        f"{spec}: {len(paths):,} images -> {shape_text(image_shape)} (crop={crop}), {labels_text}"
        + (f", {', '.join(notes)}" if notes else "")
        + (", decoded into memory" if memory else f", streaming from disk ({'cached in ' + cache_dir if cache_dir else 'no cache'})")
    )
    # Paths go to TensorFlow as bytes: a name that is not UTF-8 is read as it is.
    file_paths = [os.fsencode(path) for path in paths]

    def stream(seed=None):
        files = tf.data.Dataset.from_tensor_slices((file_paths, labels))
        # A full shuffle of the file list is cheap: a new order every epoch. With a cache the
        # order is fixed (one shuffle, so the cache is not sorted by class folder) and the
        # buffer after the cache mixes each epoch.
        files = files.shuffle(len(paths), seed=seed if seed is not None else 0 if cache_dir else None,
                              reshuffle_each_iteration=not cache_dir)
        return decode_files(files, channels, size, crop, max_image_pixels, deterministic=seed is not None)

    source = DataSource(
        spec=spec, info=info, num_examples=len(paths), in_memory=memory, summary=summary,
        labels=labels, stream=stream, content_key=content_key, cache_dir=cache_dir, shuffle_buffer=shuffle_buffer,
    )
    if memory:
        decoded = decode_files(tf.data.Dataset.from_tensor_slices((file_paths, labels)), channels, size, crop,
                               max_image_pixels).batch(256)
        batches = list(without_autotune(decoded).as_numpy_iterator())
        source.images = np.concatenate([b[0] for b in batches]) if batches else np.zeros((0,) + image_shape, np.uint8)
        source.labels = np.concatenate([b[1] for b in batches]).astype(np.int32) if batches else labels[:0]
        source.num_examples = len(source.images)
        if not len(source.images):
            raise DatasetError(f"None of the image files in {root} reads any more (each was skipped with a warning)")
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
    memory = True if num_examples is None else in_memory_by_size(num_examples, image_shape, memory_limit_bytes, in_memory)

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
        summary=(f"{spec}: {num_examples or 0:,} images -> {shape_text(image_shape)} (crop={crop}), "
                 + (f"{len(class_names)} classes" if class_names else "unlabelled")
                 + (", in memory" if memory else ", streaming from disk")),
        stream=stream, content_key=content_key_of(spec, data_dir, num_examples, image_shape, crop),
        cache_dir=cache_dir, shuffle_buffer=shuffle_buffer,
    )
    if memory:
        batches = list(without_autotune(stream(0).batch(1024)).as_numpy_iterator())
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
