"""Images with captions, for text-to-image models (StackGAN): `fashion_mnist_captions` and
`captions:PATH`.

* `fashion_mnist_captions` (built-in, offline): every Fashion-MNIST item with four captions
  written from its class and two properties measured on its pixels, each against the median of
  its class in the training split (so half of each class is each way):
  - brightness, the mean grey level of the item's pixels (those above `INK`): "dark" / "light";
  - width, the spread of the item's pixels across the image (the standard deviation of their
    column positions, in pixels): "narrow" / "wide".
  The captions are `CAPTION_TEMPLATES` filled in, e.g. "a dark pullover", "a wide pullover",
  "a dark, wide pullover", "a pullover that is dark and wide". `attributes` keeps the measured
  properties (0/1 per image), so generated images can be checked against their caption.
* `captions:PATH`: the images of a folder and `PATH/captions.jsonl`, one JSON object per line,
  `{"file": "relative/path.png", "captions": ["...", ...]}`; every listed file must exist and be an
  image, and every caption a non-empty string.
* `captions:PATH` with precomputed text embeddings, as the StackGAN authors shipped their
  char-CNN-RNN ones: `PATH/embeddings.npy`, float `[N, D]` (one embedding per image) or
  `[N, K, D]` (K per image, e.g. one per caption), row i belonging to the i-th image `captions.jsonl` lists
  (whose `"captions"` are then optional: shown in previews when given). The model then takes
  embeddings instead of strings (`StackGAN(precomputed_embeddings=True)`, chosen by `from_data`).

A `CaptionSource` yields `((images, captions), labels)`: one batch entry per (image, caption)
pair, so an epoch shows every caption once; `captions` is a `tf.string` vector, or with
precomputed embeddings float32 `[B, D]` (one entry per (image, embedding) pair). Batches are
gathered from seeded index batches, so a resumed run continues with the same pairs.

Reference:
    Zhang et al. 2017, "StackGAN: Text to Photo-realistic Image Synthesis with Stacked Generative
    Adversarial Networks", https://arxiv.org/abs/1612.03242 (its data: images with ~10 captions
    each, embedded by Reed et al. 2016's text encoder).
"""

import dataclasses
import json
import logging
import os

import numpy as np
import tensorflow as tf

from gan_tf.data import builtin as gan_data
from gan_tf.data.info import DatasetError, DatasetInfo
from gan_tf.data.pipeline import index_batches, without_autotune
from gan_tf.data.source import DataSource, SpecKind, decode_file
from gan_tf.nn.text import caption_vectorizer

logger = logging.getLogger(__name__)

BUILT_INS = ("fashion_mnist_captions",)
# What the data are (`DatasetInfo.modality`): images a model makes from captions.
MODALITY = "captioned_images"
# A pixel belongs to the item above this grey level (0..255).
INK = 16
# The words of each Fashion-MNIST class in a caption.
CLASS_WORDS = ("t-shirt", "pair of trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
               "ankle boot")
# Property words: index 0 below the class median, 1 at or above it.
BRIGHTNESS_WORDS = ("dark", "light")
WIDTH_WORDS = ("narrow", "wide")
CAPTION_TEMPLATES = ("a {brightness} {item}", "a {width} {item}", "a {brightness}, {width} {item}",
                     "a {item} that is {brightness} and {width}")


# Held-out (image, caption) examples a model previews and is measured on.
MAX_EXAMPLES = 2000


@dataclasses.dataclass(frozen=True)
class CaptionExamples:
    """What a text-to-image model needs from its data besides batches (`DatasetInfo.examples`):
    `vocabulary`, the words of the training captions (for its text encoder; empty with
    precomputed embeddings), and held-out examples: uint8 `images`, one of each image's
    `captions` (with precomputed embeddings: the caption of the chosen embedding when the file
    gives one, else `"<file> #k"`), their `labels`, `attributes` (the built-in's measured
    properties, else None) and `embeddings` (float32 `[N, D]`, the chosen precomputed
    embedding of each, else None)."""

    vocabulary: tuple
    images: np.ndarray
    captions: tuple
    labels: np.ndarray
    attributes: np.ndarray = None
    embeddings: np.ndarray = None


def caption_vocabulary(captions):
    """The words of `captions` as the text encoder's `TextVectorization` splits them (its
    standardisation: lower case, punctuation stripped), most frequent first."""
    return tuple(str(word) for word in caption_vectorizer(sorted(set(captions))).get_vocabulary(include_special_tokens=False))


def held_out_examples(source, examples_source, seed=0):
    """`CaptionExamples` of `source`'s vocabulary and a seeded draw of `MAX_EXAMPLES` images of
    `examples_source`, each with one of its captions picked at random."""
    rng = np.random.default_rng(seed)
    count = min(MAX_EXAMPLES, examples_source.num_examples)
    keep = np.sort(rng.permutation(examples_source.num_examples)[:count])
    attributes = None if examples_source.attributes is None else examples_source.attributes[keep]
    if examples_source.embeddings is not None:
        chosen = [int(rng.integers(examples_source.embeddings.shape[1])) for _ in keep]
        captions = tuple(examples_source.captions[i][k] for i, k in zip(keep, chosen))
        return CaptionExamples((), examples_source.images[keep], captions, examples_source.labels[keep], attributes,
                               embeddings=examples_source.embeddings[keep, chosen])
    captions = tuple(examples_source.captions[i][rng.integers(len(examples_source.captions[i]))] for i in keep)
    return CaptionExamples(caption_vocabulary(source.all_captions()), examples_source.images[keep], captions,
                           examples_source.labels[keep], attributes)


def is_caption_spec(spec):
    kind, _, rest = str(spec).partition(":")
    return spec in BUILT_INS or (kind == "captions" and bool(rest))


def measure_properties(images):
    """`(brightness, width)` of uint8 `images` `[N, H, W, 1]`: the mean grey level of the pixels
    above `INK`, and the standard deviation of those pixels' column positions (both 0 for an
    image without any). Both are continuous, so a class median splits a class in halves."""
    grey = images[..., 0].astype(np.float32)
    ink = (grey > INK).astype(np.float32)
    counts = np.maximum(ink.sum(axis=(1, 2)), 1.0)
    brightness = (grey * ink).sum(axis=(1, 2)) / counts
    columns = np.arange(grey.shape[2], dtype=np.float32)[None, None, :]
    mean_column = (ink * columns).sum(axis=(1, 2)) / counts
    width = np.sqrt((ink * np.square(columns - mean_column[:, None, None])).sum(axis=(1, 2)) / counts)
    return brightness.astype(np.float32), width.astype(np.float32)


def class_medians(values, labels, num_classes):
    """The median of `values` within each class (`[num_classes]`; 0 for an absent class)."""
    return np.array([np.median(values[labels == k]) if np.any(labels == k) else 0.0 for k in range(num_classes)],
                    np.float32)


def property_attributes(images, labels, medians):
    """int `[N, 2]`: (brightness >= its class median, width >= its class median), given
    `medians = (brightness medians, width medians)` per class (from the training split)."""
    brightness, width = measure_properties(images)
    return np.stack([brightness >= medians[0][labels], width >= medians[1][labels]], axis=1).astype(np.int32)


def _with_articles(text):
    """`text` with each "a" before a vowel made "an" ("a ankle boot" -> "an ankle boot")."""
    words = text.split(" ")
    return " ".join("an" if word == "a" and i + 1 < len(words) and words[i + 1][0] in "aeiou" else word
                    for i, word in enumerate(words))


def write_captions(labels, attributes):
    """The `CAPTION_TEMPLATES` captions of each image: a list of lists of strings."""
    return [[_with_articles(template.format(item=CLASS_WORDS[label], brightness=BRIGHTNESS_WORDS[bright],
                                            width=WIDTH_WORDS[wide]))
             for template in CAPTION_TEMPLATES] for label, (bright, wide) in zip(labels, attributes)]


def caption_for(label, brightness=None, width=None):
    """A caption naming class `label` and, when given (0/1), its brightness and width."""
    words = ([BRIGHTNESS_WORDS[brightness]] if brightness is not None else []) + (
        [WIDTH_WORDS[width]] if width is not None else [])
    return _with_articles("a " + (", ".join(words) + " " if words else "") + CLASS_WORDS[label])


@dataclasses.dataclass
class CaptionSource(DataSource):
    """A `DataSource` of captioned images: `images` uint8 `[N, H, W, C]`, `labels` int32 `[N]` (0
    when unlabelled), `captions` a list of each image's captions, `attributes` int `[N, 2]` of the
    built-in's measured properties (None for users' data), `embeddings` float32 `[N, K, D]`
    precomputed text embeddings (None: the model embeds the captions itself; then `captions[i]`
    has K entries, the texts or `"<file> #k"`); `held_out` the test split's `CaptionSource` (None
    when there is none)."""

    captions: list = None
    attributes: np.ndarray = None
    held_out: object = None
    embeddings: np.ndarray = None

    def pairs(self):
        """`(image index int32 [P], conditions [P])`: every (image, caption) pair, in order; the
        conditions are caption strings, or float32 embeddings `[P, D]` when precomputed."""
        if self.embeddings is not None:
            count, per_image, _ = self.embeddings.shape
            return np.repeat(np.arange(count, dtype=np.int32), per_image), self.embeddings.reshape(count * per_image, -1)
        indices = np.array([i for i, captions in enumerate(self.captions) for _ in captions], np.int32)
        texts = np.array([text for captions in self.captions for text in captions], dtype=object)
        return indices, texts

    def dataset(self, batch_size, value_range=(-1.0, 1.0), seed=None, repeat=False, start_batch=0):
        """`((float32 images in value_range, tf.string captions), int32 labels)` batches of
        (image, caption) pairs, full batches only (float32 embeddings `[B, D]` in place of the
        captions when they are precomputed)."""
        indices, texts = self.pairs()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1. Received: {batch_size}")
        if batch_size > len(indices):
            raise ValueError(f"batch_size {batch_size} is larger than the dataset ({len(indices)} captioned pairs)")
        low, high = value_range
        images, labels = tf.constant(self.images), tf.constant(self.labels)
        image_of = tf.constant(indices)
        captions = tf.constant(texts) if self.embeddings is not None else tf.constant(texts.astype(str))

        def gather(batch):
            which = tf.gather(image_of, batch)
            scaled = tf.cast(tf.gather(images, which), tf.float32) * ((high - low) / 255.0) + low
            return (scaled, tf.gather(captions, batch)), tf.gather(labels, which)

        order = index_batches(len(indices), batch_size, seed=seed, repeat=repeat, start_batch=start_batch)
        return without_autotune(order.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))

    def all_captions(self):
        """Every caption of the source, in order (what a text vocabulary is built from)."""
        return [text for captions in self.captions for text in captions]


def _fashion_source(data_dir=None):
    images, labels = gan_data.load_arrays("fashion_mnist", data_dir=data_dir, split="train")
    brightness, width = measure_properties(images)
    medians = (class_medians(brightness, labels, 10), class_medians(width, labels, 10))
    parts = {}
    for split in ("train", "test"):
        split_images, split_labels = (images, labels) if split == "train" else gan_data.load_arrays(
            "fashion_mnist", data_dir=data_dir, split="test")
        attributes = property_attributes(split_images, split_labels, medians)
        parts[split] = (split_images, split_labels.astype(np.int32), write_captions(split_labels, attributes), attributes)
    names = gan_data.dataset_info("fashion_mnist").class_names
    info = DatasetInfo(tuple(images.shape[1:]), 10, tuple(names), modality=MODALITY)

    def source(split, held_out=None):
        split_images, split_labels, captions, attributes = parts[split]
        summary = (f"fashion_mnist_captions ({split}): {len(split_images):,} images x {len(CAPTION_TEMPLATES)} captions "
                   "from class, brightness and width (each against its class's training median)")
        return CaptionSource(spec="fashion_mnist_captions", info=info, num_examples=len(split_images), in_memory=True,
                             summary=summary, images=split_images, labels=split_labels, captions=captions,
                             attributes=attributes, held_out=held_out,
                             content_key=f"fashion_mnist_captions-{split}-{len(split_images)}",
                             judged_as="fashion_mnist")  # the same images: FID comparable with fashion_mnist's

    return source("train", held_out=source("test"))


def read_caption_file(root, captions_required=True):
    """`[(file, [captions])]` from `root/captions.jsonl`, or DatasetError naming the line at fault;
    with `captions_required=False` a line may leave out `"captions"` (then `[]`)."""
    path = os.path.join(root, "captions.jsonl")
    if not os.path.isfile(path):
        raise DatasetError(f"captions:{root}: no captions.jsonl there (one line per image: "
                           '{"file": "a.png", "captions": ["a red bird", ...]})')
    entries = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"{path}:{number}: not JSON ({error.msg})") from None
            file, captions = (entry.get("file"), entry.get("captions")) if isinstance(entry, dict) else (None, None)
            if not captions_required and isinstance(file, str) and captions is None:
                captions = []
            elif not isinstance(file, str) or not isinstance(captions, list) or not captions or not all(
                    isinstance(c, str) and c.strip() for c in captions):
                raise DatasetError(f'{path}:{number}: each line needs "file" (a string) and "captions" (a list of '
                                   "non-empty strings)")
            if not os.path.isfile(os.path.join(root, file)):
                raise DatasetError(f"{path}:{number}: {file} does not exist under {root}")
            entries.append((file, [c.strip() for c in captions]))
    if not entries:
        raise DatasetError(f"{path} lists no images")
    return entries


EMBEDDINGS_FILE = "embeddings.npy"


def as_embeddings(values, size, what="This model"):
    """float32 `[N, size]` text embeddings from `values`, or ValueError naming the shape expected
    (for strings, a wrong rank or size) and refusing NaN or infinite values."""
    try:
        embeddings = np.asarray(values, np.float32)
    except (TypeError, ValueError):
        embeddings = np.asarray(values, dtype=object)
    if embeddings.dtype != np.float32 or embeddings.ndim != 2 or embeddings.shape[1] != size:
        raise ValueError(f"{what} takes text embeddings [N, {size}]. Received: shape {list(embeddings.shape)}")
    if not np.all(np.isfinite(embeddings)):
        raise ValueError("Embeddings must be finite.")
    return embeddings


def read_embeddings(root, entries):
    """float32 `[N, K, D]` from `root/embeddings.npy` (`[N, D]` or `[N, K, D]`), one row per entry
    of `captions.jsonl`, or DatasetError saying what is wrong with it."""
    path = os.path.join(root, EMBEDDINGS_FILE)
    try:
        embeddings = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path} is not a readable .npy array ({error})") from None
    if embeddings.ndim == 2:
        embeddings = embeddings[:, None, :]
    if embeddings.ndim != 3 or not np.issubdtype(embeddings.dtype, np.number) or 0 in embeddings.shape:
        raise DatasetError(f"{path} must be a float array [images, dim] or [images, per_image, dim]. "
                           f"Received: {embeddings.dtype} {list(embeddings.shape)}")
    if len(embeddings) != len(entries):
        raise DatasetError(f"{path} has {len(embeddings)} rows but captions.jsonl lists {len(entries)} images "
                           "(row i belongs to the i-th image listed)")
    embeddings = embeddings.astype(np.float32)
    if not np.all(np.isfinite(embeddings)):
        raise DatasetError(f"{path} holds NaN or infinite values")
    for number, (file, captions) in enumerate(entries, start=1):
        if captions and len(captions) != embeddings.shape[1]:
            raise DatasetError(f"captions.jsonl image {number} ({file}) has {len(captions)} captions for "
                               f"{embeddings.shape[1]} embeddings per image (give one caption per embedding, or none)")
    return embeddings


def _folder_source(root, size=None, channels=None, crop="center"):
    precomputed = os.path.isfile(os.path.join(root, EMBEDDINGS_FILE))
    entries = read_caption_file(root, captions_required=not precomputed)
    embeddings = read_embeddings(root, entries) if precomputed else None
    if precomputed:
        entries = [(file, captions or [f"{file} #{k}" for k in range(embeddings.shape[1])]) for file, captions in entries]
    decoded = []
    for file, _ in entries:
        try:
            decoded.append(decode_file(os.path.join(root, file), channels or 3, size, crop).numpy())
        except (tf.errors.InvalidArgumentError, ValueError) as error:
            raise DatasetError(f"captions:{root}: {file} is not a readable image ({error})") from None
    shapes = {image.shape for image in decoded}
    if len(shapes) > 1:
        raise DatasetError(f"captions:{root}: images of several sizes {sorted(shapes)[:3]}; pass --image_size=S")
    images = np.stack(decoded).astype(np.uint8)
    captions = [caption_list for _, caption_list in entries]
    info = DatasetInfo(tuple(images.shape[1:]), 0, (), modality=MODALITY)
    summary = f"captions:{root}: {len(images):,} images, {sum(map(len, captions)):,} captions"
    if precomputed:
        summary = (f"captions:{root}: {len(images):,} images, {embeddings.shape[0] * embeddings.shape[1]:,} "
                   f"precomputed text embeddings of {embeddings.shape[2]} values ({EMBEDDINGS_FILE})")
    return CaptionSource(spec=f"captions:{root}", info=info, num_examples=len(images), in_memory=True, summary=summary,
                         images=images, labels=np.zeros(len(images), np.int32), captions=captions,
                         embeddings=embeddings, content_key=f"captions-{root}-{len(images)}")


def open_caption_source(spec, data_dir=None, image_size=None, channels=None, crop="center"):
    """A `CaptionSource` for `fashion_mnist_captions` or `captions:PATH`."""
    if spec == "fashion_mnist_captions":
        if image_size is not None or channels not in (None, 1):
            raise ValueError("fashion_mnist_captions is 28x28 greyscale (no --image_size or --channels)")
        source = _fashion_source(data_dir)
    else:
        source = _folder_source(spec.partition(":")[2], image_size, channels, crop)
    examples = held_out_examples(source, source.held_out or source)
    source.info = dataclasses.replace(source.info, examples=examples)
    logger.info(source.summary)
    return source


SPEC_KIND = SpecKind(
    f"captioned images: {', '.join(BUILT_INS)} or captions:PATH",
    is_caption_spec,
    lambda spec, options: open_caption_source(spec, options.data_dir, options.image_size, options.channels,
                                              options.crop))
