"""Image-to-image data: pairs (input -> target, for Pix2Pix) and two unpaired domains A and B
(for CycleGAN).

`--dataset` specs (opened by `gan_tf.data.open_source`, like every other dataset):

* `edges2fashion` (paired, built-in, offline): each Fashion-MNIST item, padded to 32x32, is the
  target; its input is the item's edge map (`edge_map`: Sobel gradient magnitude of the lightly
  blurred item above a fixed threshold, white lines on black). Train: Fashion-MNIST's 60,000
  training items; held out: its 10,000 test items. Labels are the items' classes.
* `thin2bold_mnist` (unpaired, built-in, offline): `mnist_5k`'s 500 digits per class are split,
  by a seeded shuffle, into two halves: domain A is one half as drawn, domain B the other half
  with strokes thickened (`thicken`: a 3x3 grey-level dilation). No digit has its partner in the
  other domain. 25 digits per class of each domain are held out. Labels are the digits.
* `pairs:PATH` (paired): pix2pix's own layout, each file the input and the target side by side
  (input on the left: pix2pix's `combine_A_and_B.py` writes `A | B`; `pairs:PATH:BtoA` takes the
  right half as input), in `PATH/train/` (held out: `PATH/test/`, else `PATH/val/`) or directly
  in `PATH`; or two folders matched by file name, `PATH/A/x.png` + `PATH/B/x.png` (or
  `PATH/A/train/x.png` + `PATH/B/train/x.png` with `test`/`val`). Unlabelled.
* `unpaired:PATH` (unpaired): CycleGAN's layout, `PATH/trainA/`, `PATH/trainB/`, `PATH/testA/`,
  `PATH/testB/`. Unlabelled.
* `tfds:cycle_gan/NAME` (unpaired): TensorFlow Datasets' CycleGAN sets (`horse2zebra`, ...), for
  users with internet (offline it fails within seconds, naming the options).

Data without a held-out split hold out a seeded 10% of the training examples. Files that do not
decode are skipped with a warning that counts them; pairs whose partner is missing likewise.

Batches are `((inputs, targets), (input_labels, target_labels))`: `float32` images in the model's
value range and `int32` labels (0 when unlabelled). Paired data keep the pairs; unpaired data draw
each domain in its own order (an epoch is a pass over the larger domain, as in CycleGAN's code).
Both are functions of the seed that can start at any batch (`start_batch`), as for image data,
and so is the augmentation: random jitter (scale up by 286/256, random crop back: Isola et al.
2017, section 6.1) and mirroring, the same for both images of a pair. The built-ins choose what
suits them (fashion items: both; digits: none, a mirrored digit is not a digit); `pairs:` and
`unpaired:` use both, as the papers did.
"""

import dataclasses
import logging
import os

import numpy as np
import tensorflow as tf

from gan_tf.data import builtin as gan_data
from gan_tf.data.info import DatasetError, DatasetInfo, DatasetUnavailableError, Examples
from gan_tf.data.pipeline import index_batches, without_autotune
from gan_tf.data.image_files import IMAGE_EXTENSIONS, ImageFileError, read_image, warn_skipped
from gan_tf.data.source import (DataSource, SpecKind, content_key_of, convert_channels, fit_to_size, parse_image_size,
                                transform_arrays)

logger = logging.getLogger(__name__)

BUILT_INS = ("edges2fashion", "thin2bold_mnist")
KINDS = ("pairs", "unpaired")
AUGMENTATIONS = ("jitter", "mirror")
# Pix2Pix's jitter: 256 x 256 images resized to 286 x 286, then cropped back at random.
JITTER_SCALE = 286 / 256
HELD_OUT_FRACTION = 0.1
# Held-out examples a model keeps for its preview grids and evaluation (a seeded draw).
MAX_EXAMPLES = 2000
EDGE_THRESHOLD = 0.3
_SPLIT_DIRECTIONS = ("AtoB", "BtoA")


def is_translation_spec(spec):
    """Whether a `--dataset` value names image-to-image data."""
    kind, _, rest = str(spec).partition(":")
    return spec in BUILT_INS or (kind in KINDS and bool(rest)) or (kind == "tfds" and rest.startswith("cycle_gan"))


# ----------------------------------------------------------------------- derived built-ins


def pad_to(images, size):
    """uint8 `[N, h, w, C]` zero-padded (centred) to `size x size`."""
    top, left = (size - images.shape[1]) // 2, (size - images.shape[2]) // 2
    return np.pad(images, ((0, 0), (top, size - images.shape[1] - top), (left, size - images.shape[2] - left), (0, 0)))


def edge_map(images, threshold=EDGE_THRESHOLD):
    """The edge map of uint8 greyscale `images` `[N, H, W, 1]`: 255 where the Sobel gradient
    magnitude of the image (in [0, 1], blurred by a 3x3 binomial filter first) exceeds
    `threshold`, else 0."""
    pixels = tf.cast(images, tf.float32) / 255.0
    binomial = tf.constant([1.0, 2.0, 1.0]) / 4.0
    blur = tf.reshape(tf.tensordot(binomial, binomial, axes=0), [3, 3, 1, 1])
    pixels = tf.nn.conv2d(pixels, blur, strides=1, padding="SAME")
    gradients = tf.image.sobel_edges(pixels)  # [N, H, W, 1, 2]: dy, dx
    magnitude = tf.norm(gradients, axis=-1)
    return (tf.cast(magnitude > threshold, tf.uint8) * 255).numpy()


def thicken(images):
    """uint8 `images` with strokes thickened by one pixel on every side (3x3 grey dilation)."""
    return tf.nn.max_pool2d(tf.constant(images), ksize=3, strides=1, padding="SAME").numpy()


def _edges2fashion(split, data_dir):
    images, labels = gan_data.load_arrays("fashion_mnist", data_dir=data_dir, split=split)
    targets = pad_to(images, 32)
    return edge_map(targets), labels, targets, labels


def _thin2bold_halves(seed=0):
    """`{"trainA", "testA", "trainB", "testB"}: (images, labels)` from mnist_5k."""
    images, labels = gan_data.load_arrays("mnist_5k")
    rng = np.random.default_rng(seed)
    parts = {name: [] for name in ("trainA", "testA", "trainB", "testB")}
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        half = len(members) // 2
        held_out = max(1, round(half * HELD_OUT_FRACTION))
        for domain, indices in (("A", members[:half]), ("B", members[half : 2 * half])):
            parts["test" + domain].append(indices[:held_out])
            parts["train" + domain].append(indices[held_out:])
    halves = {}
    for name, pieces in parts.items():
        indices = np.sort(np.concatenate(pieces))
        domain_images = images[indices]
        halves[name] = (thicken(domain_images) if name.endswith("B") else domain_images, labels[indices])
    return halves


# --------------------------------------------------------------------------------- folders


def _image_files(directory):
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(directory, name) for name in os.listdir(directory)
                  if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)
                  and os.path.isfile(os.path.join(directory, name)))


def _decode_files(paths, what):
    """uint8 images (upright, native size, 1 or 3 channels) of the files that read
    (`gan_tf.data.image_files`); warns about the rest."""
    decoded, skipped = [], []
    for path in paths:
        try:
            decoded.append((path, read_image(path)))
        except ImageFileError as error:
            skipped.append((path, str(error)))
    warn_skipped(what, "image file(s) that do not decode", skipped)
    return decoded


def _fit_all(images, size, channels, crop, what):
    """A list of uint8 images of any size as one array at `size` (native when all agree)."""
    if size is None:
        sizes = sorted({image.shape[:2] for image in images})
        if len(sizes) > 1:
            shown = ", ".join(f"{h}x{w}" for h, w in sizes[:5])
            raise DatasetError(f"{what} holds images of {len(sizes)} sizes ({shown}); choose one with --image_size=S or HxW")
        size = sizes[0]
    if channels is None:
        channels = 1 if all(image.shape[-1] in (1, 2) for image in images) else 3
    return np.stack([fit_to_size(convert_channels(tf.constant(image), channels), size, crop).numpy() for image in images])


def _split_dirs(root):
    """`(train_dir, held_out_dir or None)` under `root`: `train/` with `test/` or `val/`, else `root`."""
    train = os.path.join(root, "train")
    if os.path.isdir(train):
        for name in ("test", "val"):
            if os.path.isdir(os.path.join(root, name)):
                return train, os.path.join(root, name)
        return train, None
    return root, None


def _side_by_side(directory, reverse, size, channels, crop, spec):
    decoded = _decode_files(_image_files(directory), spec)
    lefts, rights = [], []
    for path, image in decoded:
        if image.shape[1] < 2 or image.shape[1] % 2:
            logger.warning("%s: skipped %s: %d pixels wide, not two halves side by side", spec, path, image.shape[1])
            continue
        half = image.shape[1] // 2
        lefts.append(image[:, :half])
        rights.append(image[:, half:])
    if not lefts:
        return None
    inputs, targets = (rights, lefts) if reverse else (lefts, rights)
    return _fit_all(inputs, size, channels, crop, spec), _fit_all(targets, size, channels, crop, spec)


def _matched_by_name(directory_a, directory_b, size, channels, crop, spec):
    files_a = {os.path.basename(p): p for p in _image_files(directory_a)}
    files_b = {os.path.basename(p): p for p in _image_files(directory_b)}
    common = sorted(set(files_a) & set(files_b))
    unmatched = len(set(files_a) ^ set(files_b))
    if unmatched:
        logger.warning("%s: %d file(s) in %s or %s have no partner of the same name in the other; skipped",
                       spec, unmatched, directory_a, directory_b)
    decoded_a = dict(_decode_files([files_a[name] for name in common], spec))
    decoded_b = dict(_decode_files([files_b[name] for name in common], spec))
    pairs = [(decoded_a[files_a[n]], decoded_b[files_b[n]]) for n in common if files_a[n] in decoded_a and files_b[n] in decoded_b]
    if not pairs:
        return None
    return (_fit_all([a for a, _ in pairs], size, channels, crop, spec),
            _fit_all([b for _, b in pairs], size, channels, crop, spec))


def _read_pairs(root, reverse, size, channels, crop, spec):
    """`(train (inputs, targets), held_out (inputs, targets) or None)` of a `pairs:` folder."""
    if not os.path.isdir(root):
        raise DatasetError(f"Paired-image folder not found: {root}")
    if os.path.isdir(os.path.join(root, "A")) and os.path.isdir(os.path.join(root, "B")):
        folder_a, folder_b = os.path.join(root, "A"), os.path.join(root, "B")
        if reverse:
            folder_a, folder_b = folder_b, folder_a
        train_a, held_out_a = _split_dirs(folder_a)
        train_b, held_out_b = _split_dirs(folder_b)
        train = _matched_by_name(train_a, train_b, size, channels, crop, spec)
        held_out = _matched_by_name(held_out_a, held_out_b, size, channels, crop, spec) if held_out_a and held_out_b else None
    else:
        train_dir, held_out_dir = _split_dirs(root)
        train = _side_by_side(train_dir, reverse, size, channels, crop, spec)
        held_out = _side_by_side(held_out_dir, reverse, size, channels, crop, spec) if held_out_dir else None
    if train is None:
        raise DatasetError(
            f"No image pairs in {root}: expected files with the input and the target side by side (in {root}/train/ "
            f"or {root}/), or {root}/A/ and {root}/B/ holding files of the same names"
        )
    return train, held_out


def _read_domains(root, size, channels, crop, spec):
    if not os.path.isdir(root):
        raise DatasetError(f"Unpaired-image folder not found: {root}")
    domains = {}
    for name in ("trainA", "trainB", "testA", "testB"):
        decoded = _decode_files(_image_files(os.path.join(root, name)), spec)
        if not decoded and name.startswith("train"):
            raise DatasetError(f"{spec}: no decodable image in {os.path.join(root, name)} (CycleGAN's layout: "
                               "trainA/, trainB/ and optionally testA/, testB/)")
        domains[name] = _fit_all([image for _, image in decoded], size, channels, crop, spec) if decoded else None
    return domains


def _tfds_domains(name, data_dir, size, channels, crop, spec):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises DatasetNotFoundError and friends
        raise DatasetError(f"No TFDS dataset {name!r}: {str(error).strip().splitlines()[0] if str(error).strip() else error}") from None
    if not builder.is_prepared():
        if not gan_data._can_reach("storage.googleapis.com", 443):
            raise DatasetUnavailableError(
                f"Dataset {spec!r} is not available: tfds has not prepared it and cannot download it (no internet). "
                "Offline options: a tfds data_dir where it is prepared (--data_dir), unpaired:PATH with trainA/ and "
                "trainB/ folders of images, or the built-in thin2bold_mnist."
            )
        builder.download_and_prepare()
    domains = {}
    for split in ("trainA", "trainB", "testA", "testB"):
        images = [example["image"] for example in tfds.as_numpy(builder.as_dataset(split=split))]
        domains[split] = _fit_all(images, size, channels, crop, spec) if images else None
    return domains


# ---------------------------------------------------------------------------------- source


def _held_out_indices(count, seed=0):
    """A seeded `HELD_OUT_FRACTION` of `range(count)` (at least one), and the rest."""
    order = np.random.default_rng(seed).permutation(count)
    held = max(1, round(count * HELD_OUT_FRACTION))
    return np.sort(order[held:]), np.sort(order[:held])


def open_translation_source(spec, data_dir=None, image_size=None, channels=None, crop="center", seed=0):
    """A `TranslationSource` for an image-to-image `--dataset` spec (see the module docstring).

    Raises:
        ValueError: for a malformed spec.
        DatasetError: for data that cannot be read (missing folder, no pairs, ...).
        DatasetUnavailableError: for data that cannot be had here (tfds offline).
    """
    size = parse_image_size(image_size)
    kind, _, rest = spec.partition(":")
    class_names = ()
    augment = AUGMENTATIONS
    if spec == "edges2fashion":
        train_inputs, train_labels, train_targets, _ = _edges2fashion("train", data_dir)
        test_inputs, test_labels, test_targets, _ = _edges2fashion("test", data_dir)
        train_input_labels = train_target_labels = train_labels
        test_input_labels = test_target_labels = test_labels
        class_names = gan_data.DATASETS["fashion_mnist"].class_names
        paired, what = True, "Fashion-MNIST items from their edge maps"
    elif spec == "thin2bold_mnist":
        halves = _thin2bold_halves(seed=0)
        (train_inputs, train_input_labels), (train_targets, train_target_labels) = halves["trainA"], halves["trainB"]
        (test_inputs, test_input_labels), (test_targets, test_target_labels) = halves["testA"], halves["testB"]
        class_names = gan_data.DATASETS["mnist_5k"].class_names
        paired, what, augment = False, "mnist_5k digits as drawn (A) and thickened (B), disjoint halves", ()
    elif kind == "pairs" and rest:
        root, reverse = rest, False
        head, _, direction = rest.rpartition(":")
        if head and direction in _SPLIT_DIRECTIONS:
            root, reverse = head, direction == "BtoA"
        (train_inputs, train_targets), held_out = _read_pairs(root, reverse, size, channels, crop, spec)
        if held_out is None:
            keep, held = _held_out_indices(len(train_inputs), seed)
            held_out = (train_inputs[held], train_targets[held])
            train_inputs, train_targets = train_inputs[keep], train_targets[keep]
        test_inputs, test_targets = held_out
        paired, what = True, "image pairs"
    else:
        if kind == "unpaired" and rest:
            domains = _read_domains(rest, size, channels, crop, spec)
        else:
            domains = _tfds_domains(rest, data_dir, size, channels, crop, spec)
        train_inputs, train_targets = domains["trainA"], domains["trainB"]
        for domain in ("A", "B"):
            if domains["test" + domain] is None:
                keep, held = _held_out_indices(len(domains["train" + domain]), seed)
                domains["test" + domain] = domains["train" + domain][held]
                domains["train" + domain] = domains["train" + domain][keep]
        train_inputs, train_targets = domains["trainA"], domains["trainB"]
        test_inputs, test_targets = domains["testA"], domains["testB"]
        paired, what = False, "two unpaired domains"
    if class_names:  # built-ins: resize like any built-in
        arrays = [train_inputs, train_targets, test_inputs, test_targets]
        train_inputs, train_targets, test_inputs, test_targets = (transform_arrays(a, channels, size, crop) for a in arrays)
    else:
        train_input_labels, train_target_labels = np.zeros(len(train_inputs), np.int32), np.zeros(len(train_targets), np.int32)
        test_input_labels, test_target_labels = None, None
    if paired and train_inputs.shape[1:3] != train_targets.shape[1:3]:
        raise DatasetError(f"{spec}: inputs are {train_inputs.shape[1:3]} but targets {train_targets.shape[1:3]}")
    for name, images in (("inputs", test_inputs), ("targets", test_targets)):
        reference = train_inputs if name == "inputs" else train_targets
        if images.shape[1:] != reference.shape[1:]:
            raise DatasetError(f"{spec}: held-out {name} are {images.shape[1:]}, training {name} {reference.shape[1:]}")
    draw = np.random.default_rng(seed)
    pick_inputs = np.sort(draw.permutation(len(test_inputs))[:MAX_EXAMPLES])
    pick_targets = pick_inputs if paired else np.sort(draw.permutation(len(test_targets))[:MAX_EXAMPLES])
    examples = Examples(
        inputs=test_inputs[pick_inputs],
        input_labels=None if test_input_labels is None else test_input_labels[pick_inputs],
        targets=test_targets[pick_targets],
        target_labels=None if test_target_labels is None else test_target_labels[pick_targets],
        aligned=paired,
    )
    info = DatasetInfo(tuple(train_targets.shape[1:]), len(class_names), tuple(class_names),
                       source_shape=tuple(train_inputs.shape[1:]), pairing="paired" if paired else "unpaired",
                       examples=examples)
    shape = lambda s: "x".join(str(d) for d in s)  # noqa: E731
    counts = (f"{len(train_inputs):,} pairs" if paired else f"{len(train_inputs):,} A + {len(train_targets):,} B images")
    summary = (f"{spec}: {what}, {counts} {shape(info.source_shape)} -> {shape(info.image_shape)}, "
               f"{len(test_inputs):,} held out, {len(class_names)} classes" if class_names else
               f"{spec}: {what}, {counts} {shape(info.source_shape)} -> {shape(info.image_shape)}, "
               f"{len(test_inputs):,} held out, unlabelled")
    summary += f", augmentation: {' + '.join(augment) or 'none'}, in memory"
    return TranslationSource(
        spec=spec, info=info, num_examples=max(len(train_inputs), len(train_targets)), in_memory=True,
        summary=summary, images=train_targets, labels=np.asarray(train_target_labels, np.int32),
        content_key=content_key_of(spec, "translation", info.image_shape, info.source_shape, crop, len(train_targets)),
        inputs=train_inputs, input_labels=np.asarray(train_input_labels, np.int32), paired=paired, augment=augment,
    )


SPEC_KIND = SpecKind(
    f"image-to-image data: {', '.join(BUILT_INS)}, pairs:PATH, unpaired:PATH or tfds:cycle_gan/NAME",
    is_translation_spec,
    lambda spec, options: open_translation_source(spec, options.data_dir, options.image_size, options.channels,
                                                  options.crop))


def bicubic_downsample(images, scale):
    """uint8 `[N, H, W, C]` images made `scale` times smaller by antialiased bicubic resizing,
    rounded back to uint8: the low-resolution inputs of super-resolution (SRGAN trains on the same
    transform of its float batches)."""
    images = np.asarray(images)
    size = (images.shape[1] // scale, images.shape[2] // scale)
    small = tf.image.resize(tf.constant(images, tf.float32), size, method="bicubic", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(small), 0, 255), tf.uint8).numpy()


def reversed_source(source):
    """`source` with its domains swapped (B's images as inputs, A's as targets): what B -> A
    translations are judged against."""
    swapped = dataclasses.replace(source.info, image_shape=source.info.source_shape, source_shape=source.info.image_shape)
    return dataclasses.replace(source, info=swapped, images=source.inputs, labels=source.input_labels,
                               inputs=source.images, input_labels=source.labels, content_key=source.content_key + "-A")


def jittered_size(side):
    """Side length that random jitter scales `side` up to before cropping back (286 for 256)."""
    return int(round(side * JITTER_SCALE))


def augment_batch(images, key, augment):
    """Random jitter and / or mirroring of a float batch `[B, H, W, C]`, from stateless key `key`
    (int32 `[2]`): every image its own crop offset and flip."""
    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    crop_key, flip_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    if "jitter" in augment:
        big_height, big_width = jittered_size(height), jittered_size(width)
        enlarged = tf.image.resize(images, [big_height, big_width], method="bilinear")
        offsets = tf.random.stateless_uniform([batch, 2], seed=crop_key, dtype=tf.float32)
        top = tf.floor(offsets[:, 0] * (big_height - height + 1))
        left = tf.floor(offsets[:, 1] * (big_width - width + 1))
        # crop_and_resize at the input's own pixel grid: an exact crop, vectorised.
        boxes = tf.stack([top / (big_height - 1), left / (big_width - 1),
                          (top + height - 1) / (big_height - 1), (left + width - 1) / (big_width - 1)], axis=1)
        images = tf.image.crop_and_resize(enlarged, boxes, tf.range(batch), [height, width], method="bilinear")
    if "mirror" in augment:
        flip = tf.random.stateless_uniform([batch], seed=flip_key) < 0.5
        images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)
    return images


@dataclasses.dataclass
class TranslationSource(DataSource):
    """A `DataSource` of image-to-image data. `images` / `labels` are the target domain's
    training images (what `arrays()` gives the quality metrics: outputs are compared with
    them); `inputs` / `input_labels` the source domain's, aligned with `images` when `paired`;
    `info.examples` the held-out `Examples`; `augment` a subset of `AUGMENTATIONS`."""

    inputs: np.ndarray = None
    input_labels: np.ndarray = None
    paired: bool = True
    augment: tuple = AUGMENTATIONS

    def dataset(self, batch_size, value_range=(-1.0, 1.0), seed=None, repeat=False, start_batch=0):
        """`((inputs, targets), (input_labels, target_labels))` batches (see the module docstring)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1. Received: {batch_size}")
        if start_batch < 0:
            raise ValueError(f"start_batch must be at least 0. Received: {start_batch}")
        smaller = min(len(self.inputs), len(self.images))
        if batch_size > smaller:
            raise ValueError(f"batch_size {batch_size} is larger than the dataset ({smaller} examples): "
                             "with the remainder dropped no batch would be left")
        low, high = value_range
        scale = (high - low) / 255.0
        inputs, targets = tf.constant(self.inputs), tf.constant(self.images)
        input_labels, target_labels = tf.constant(self.input_labels), tf.constant(self.labels)
        options = dict(batch_size=batch_size, repeat=repeat, start_batch=start_batch)
        input_order = index_batches(len(self.inputs), seed=seed, **options)
        if self.paired:
            orders = input_order.map(lambda indices: (indices, indices))
        else:
            target_seed = None if seed is None else seed + 1
            orders = tf.data.Dataset.zip(input_order, index_batches(len(self.images), seed=target_seed, **options))
        base_key = tf.constant([0 if seed is None else seed, 0x5EED], tf.int32)
        if seed is None:
            base_key = tf.constant(np.random.randint(0, 2**31 - 1, size=2), tf.int32)
        augment, paired = self.augment, self.paired

        def gather(batch_number, order):
            input_indices, target_indices = order
            a = tf.cast(tf.gather(inputs, input_indices), tf.float32) * scale + low
            b = tf.cast(tf.gather(targets, target_indices), tf.float32) * scale + low
            if augment:
                key = tf.random.experimental.stateless_fold_in(base_key, batch_number)
                if paired and a.shape[1:3] == b.shape[1:3]:  # one transform for both halves
                    both = augment_batch(tf.concat([a, b], axis=-1), key, augment)
                    a, b = both[..., : a.shape[-1]], both[..., a.shape[-1]:]
                else:
                    a_key, b_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
                    a, b = augment_batch(a, a_key, augment), augment_batch(b, b_key, augment)
            return (a, b), (tf.gather(input_labels, input_indices), tf.gather(target_labels, target_indices))

        dataset = orders.enumerate(start=start_batch).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
        return without_autotune(dataset.prefetch(tf.data.AUTOTUNE))
