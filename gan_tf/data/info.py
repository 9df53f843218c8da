"""What every kind of data shares: `DatasetInfo` (what a model needs to know before it sees the
data), the held-out `Examples` image data bring, and the errors a source raises."""

import dataclasses

import numpy as np


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
    # () -> the data's own classifier (`gan_tf.data.classifiers.Classifier`, trained and cached on first
    # use) or None for unlabelled data: a feature network for models that need one (SRGAN's
    # content loss) without downloading weights.
    classifier: object = dataclasses.field(default=None, compare=False, repr=False)
    # (max_examples, seed) -> uint8 images [N, H, W, C]: a seeded draw of at most `max_examples` of the
    # images the model trains on (`DataSource.arrays`), for models that fit something to the data before
    # training (the self-conditioned GAN's clusters); None for data that cannot give them.
    training_images: object = dataclasses.field(default=None, compare=False, repr=False)
    # What the examples are: "images", or "melody" (`gan_tf.data.melodies`: bars of piano roll with
    # chords as labels). A model trains only on data of its own `modality`.
    modality: str = "images"


@dataclasses.dataclass
class Examples:
    """Held-out examples: `inputs` (uint8, source domain) with `input_labels`; `targets` (uint8)
    with `target_labels`: for paired data `targets[i]` is `inputs[i]`'s partner (`aligned`); for
    unpaired data they are held-out images of the target domain, in no relation to the inputs.
    Labels are None when the data are unlabelled."""

    inputs: np.ndarray
    input_labels: np.ndarray
    targets: np.ndarray
    target_labels: np.ndarray
    aligned: bool
