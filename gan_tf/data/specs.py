"""Every kind of `--dataset` value in one table, and `open_source`, which reads any of them.

| kind | values | module |
| --- | --- | --- |
| image-to-image | `edges2fashion`, `thin2bold_mnist`, `pairs:PATH`, `unpaired:PATH`, `tfds:cycle_gan/NAME` | `gan_tf.data.pairs` |
| melodies | `bach_chorales`, `midi:PATH` | `gan_tf.data.melodies` |
| captioned images | `fashion_mnist_captions`, `captions:PATH` | `gan_tf.data.captions` |
| images | `mnist_5k`, `mnist`, `fashion_mnist`, `cifar10`, `folder:PATH`, `tfds:NAME[:SPLIT]` | `gan_tf.data.images` |

Each module defines its `SPEC_KIND` (`gan_tf.data.source.SpecKind`: how its values are written,
which values it reads, how it opens them); a new kind of data is one module and one line in
`SPEC_KINDS`.
"""

from gan_tf.data import captions, images, melodies, pairs
from gan_tf.data.image_files import DEFAULT_MAX_PIXELS
from gan_tf.data.source import CROPS, DEFAULT_MEMORY_LIMIT, DEFAULT_SHUFFLE_BUFFER, OpenOptions, parse_image_size

# The first kind that matches a value reads it: image-to-image data before images, whose
# `tfds:NAME` would also take `tfds:cycle_gan/NAME`.
SPEC_KINDS = (pairs.SPEC_KIND, melodies.SPEC_KIND, captions.SPEC_KIND, images.SPEC_KIND)


def spec_kind(spec):
    """The `SpecKind` that reads `spec`.

    Raises:
        ValueError: for a value no kind reads, naming every kind's values.
    """
    for kind in SPEC_KINDS:
        if kind.matches(spec):
            return kind
    choices = "; ".join(kind.usage for kind in reversed(SPEC_KINDS))
    raise ValueError(f"Unknown dataset {spec!r}. Choose {choices}.")


def check_spec(spec):
    """Raises `ValueError` if no kind of data reads `spec` (before anything is loaded)."""
    spec_kind(spec)


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
    max_image_pixels=DEFAULT_MAX_PIXELS,
):
    """Opens a dataset by its `--dataset` spec: a value of one of `SPEC_KINDS` (module docstring).

    Args:
        spec: a `--dataset` value: a built-in name, `folder:PATH`, `tfds:NAME[:SPLIT]`, ...
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
        max_image_pixels: image files whose decoded pixels would be more are skipped (a large
            JPEG is decoded at a reduced scale first: `gan_tf.data.image_files`).

    Returns:
        A `DataSource`.

    Raises:
        ValueError: for a malformed spec, size, channel count or crop.
        DatasetError: for data that cannot be read (missing or empty folder, no images, ...).
        DatasetUnavailableError: for data that cannot be had here (tfds offline).
    """
    kind = spec_kind(spec)
    size = parse_image_size(image_size)
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 or 3. Received: {channels!r}")
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}. Received: {crop!r}")
    return kind.open(spec, OpenOptions(data_dir=data_dir, split=split, image_size=size, channels=channels, crop=crop,
                                       cache_dir=cache_dir, in_memory=in_memory,
                                       memory_limit_bytes=memory_limit_bytes, shuffle_buffer=shuffle_buffer,
                                       max_image_pixels=max_image_pixels))


def load_dataset(name, batch_size, value_range=(-1.0, 1.0), data_dir=None, split="train", seed=None, repeat=False,
                 image_size=None, channels=None, crop="center", cache_dir=None):
    """Opens dataset `name` and returns its training pipeline of `(images, labels)` batches.

    `name` is a built-in name, `folder:PATH` or `tfds:NAME[:SPLIT]`; `image_size`, `channels`,
    `crop` and `cache_dir` are `open_source`'s (the resize policy is described
    there). Small data are served from memory (`make_dataset`), large data stream from disk.

    Example:
        >>> dataset = load_dataset("mnist_5k", batch_size=64, value_range=(-1, 1), seed=0)
        >>> images, labels = next(iter(dataset))  # [64, 28, 28, 1] in [-1, 1], [64]
        >>> photos = load_dataset("folder:/data/flowers", 64, image_size=64)  # [64, 64, 64, 3]
    """
    source = open_source(name, data_dir=data_dir, split=split, image_size=image_size, channels=channels, crop=crop,
                         cache_dir=cache_dir)
    return source.dataset(batch_size, value_range=value_range, seed=seed, repeat=repeat)
