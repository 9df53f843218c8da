"""`TranslationModel`: what the image-to-image models (Pix2Pix, CycleGAN) share.

They implement the same contract as every model (`gan_tf.models.generative`), with images where a GAN
has noise:

* `from_data(info)` needs image-to-image data (`gan_tf.data.pairs`: `info.source_shape`
  is set); a model that learns from pairs refuses unpaired data. The model keeps the data's
  held-out `Examples` (`self.examples`, not saved) for its preview grid and for `sample`.
* `sample(n, seed, conditions={"images": uint8 inputs})` translates the inputs; without
  conditions it translates the first `n` held-out inputs (cycled). The returned conditions carry
  the inputs, their labels (so the quality metrics' label accuracy is label preservation) and,
  for paired data, the targets.
* `preview(rows, columns, seed)`: one held-out example per row group, as the model's
  `preview_columns` lays it out (Pix2Pix: input | output | target).
* `directions()`: `{signature name: Direction}`, the mappings the export serves
  (`gan_tf.serving.translation_signatures`); the first is `serving_default`.

A subclass builds its networks, declares `optimizer_networks()` (`{role: [networks]}`, every
role gets its own optimizer: `gan_tf.models.generative.OptimizersByRole`), and writes `train_step`,
`translate` and `directions`.
"""

import collections
import math

import keras
import numpy as np
import tensorflow as tf

from gan_tf.grids import grouped_cells
from gan_tf.models.generative import GenerativeModel, OptimizersByRole, Samples
from gan_tf.models.multi_worker import MultiWorkerWorkarounds
from gan_tf.nn.noise import replica_slice
from gan_tf.serving import translation_signatures

Direction = collections.namedtuple("Direction", ["source_shape", "target_shape", "translate", "stochastic", "reverse"],
                                   defaults=(False,))
Direction.__doc__ = """One mapping a translation model serves: input and output shapes `(H, W, C)`,
`translate(images, seeds)` (float images in the value range, int32 `[batch, 2]` seeds -> images),
whether its output depends on the seeds (Pix2Pix's dropout) or not, and whether it maps the
data's target domain back to the source domain (`reverse`: CycleGAN's `b_to_a`)."""


def example_seeds(count, seed=None, offset=0):
    """int32 `[count, 2]` per-example seeds: `[seed, offset + i]`, or random when `seed` is None."""
    if seed is None:
        return np.random.randint(0, 2**31 - 1, size=(count, 2)).astype(np.int32)
    return np.stack([np.full(count, int(seed) % 2**31), offset + np.arange(count)], axis=1).astype(np.int32)


def as_display(images, shape, value_range):
    """Float `images` drawn at `shape` `(H, W, C)`: resized (nearest) and their channels converted
    (greyscale tiled to RGB, RGB averaged to grey), for a grid of mixed inputs and outputs."""
    images = np.asarray(images, np.float32)
    if images.shape[1:3] != tuple(shape[:2]):
        images = tf.image.resize(images, shape[:2], method="nearest").numpy()
    if images.shape[-1] != shape[-1]:
        images = np.repeat(images, shape[-1], axis=-1) if images.shape[-1] == 1 else images.mean(-1, keepdims=True)
    return np.clip(images, *value_range)


class TranslationModel(OptimizersByRole, MultiWorkerWorkarounds, GenerativeModel):
    """Base of the image-to-image models (see the module docstring)."""

    value_range = (-1.0, 1.0)
    default_batch_size = 16
    # "paired": learns from (input, target) pairs; "unpaired": from two sets (pairs will do).
    pairing = "paired"
    conditional = False

    def __init__(self, source_shape, image_shape, seed=None, **kwargs):
        super().__init__(**kwargs)
        for name, shape in (("source_shape", source_shape), ("image_shape", image_shape)):
            if len(tuple(shape)) != 3 or min(shape) < 1:
                raise ValueError(f"`{name}` must be (height, width, channels). Received: {name}={shape}")
        self.source_shape = tuple(int(d) for d in source_shape)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        self.examples = None

    @classmethod
    def from_data(cls, info, **model_args):
        """The model for image-to-image data `info`; ValueError for plain images, or for unpaired
        data given to a model that learns from pairs."""
        cls.check_modality(info)
        if info.source_shape is None:
            raise ValueError(
                f"{cls.__name__} translates images and needs image-to-image data: paired (edges2fashion, "
                "pairs:PATH)" + ("" if cls.pairing == "paired" else " or unpaired (thin2bold_mnist, unpaired:PATH, "
                                 "tfds:cycle_gan/NAME)") + "; this dataset holds images only."
            )
        if cls.pairing == "paired" and info.pairing != "paired":
            raise ValueError(f"{cls.__name__} learns from (input, target) pairs; this dataset is {info.pairing} "
                             "(use cyclegan for unpaired domains, or paired data: edges2fashion, pairs:PATH).")
        model = cls(source_shape=tuple(info.source_shape), image_shape=tuple(info.image_shape), **model_args)
        model.examples = info.examples
        return model

    @staticmethod
    def unpack(data):
        """`(inputs, targets), (input_labels, target_labels)` of a translation batch."""
        if not (isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], (tuple, list))):
            raise ValueError("A translation model trains on ((inputs, targets), (input_labels, target_labels)) "
                             "batches (gan_tf.data.pairs); this dataset yields images.")
        return data[0]

    def training_seeds(self, batch_size):
        """This replica's int32 `[batch, 2]` per-example seeds from the model's noise stream."""
        return replica_slice(lambda size: keras.random.randint((size, 2), 0, 2**31 - 1, seed=self.seed_generator,
                                                               dtype="int32"), batch_size)

    # ------------------------------------------------------------------------------ sampling

    def directions(self):
        """`{signature name: Direction}`; the first is the model's main mapping."""
        raise NotImplementedError

    def translate(self, images, seed=None, direction=None, batch_size=64):
        """Translates float `images` (in the value range) along `direction` (default: the first),
        in batches; `seed` makes stochastic models reproducible (per example: `[seed, i]`)."""
        directions = self.directions()
        name = direction or next(iter(directions))
        if name not in directions:
            raise ValueError(f"{type(self).__name__} translates {', '.join(directions)}. Received: {name!r}")
        chosen = directions[name]
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[1:] != chosen.source_shape:
            raise ValueError(f"{type(self).__name__} ({name}) takes images of shape {chosen.source_shape}. "
                             f"Received: {images.shape[1:] if images.ndim == 4 else images.shape}")
        seeds = example_seeds(len(images), seed)
        outputs = [keras.ops.convert_to_numpy(chosen.translate(images[i : i + batch_size], seeds[i : i + batch_size]))
                   for i in range(0, len(images), batch_size)]
        return np.concatenate(outputs) if outputs else np.zeros((0,) + chosen.target_shape, np.float32)

    def _held_out(self, count, reverse=False, spread=False):
        """`(inputs, labels, targets or None)`: the first `count` held-out examples (cycled), or with
        `spread` `count` taken at even intervals across them (held-out sets sorted by class, as
        thin2bold_mnist's, then show every class); with `reverse` the target domain's held-out
        images, for a direction that maps it back."""
        if self.examples is None:
            raise ValueError(f"{type(self).__name__} translates images: pass conditions={{'images': uint8 images}} "
                             "(this model was loaded without its dataset's held-out examples).")
        examples = self.examples
        images, labels = (examples.targets, examples.target_labels) if reverse else (examples.inputs, examples.input_labels)
        take = np.resize(np.arange(len(images)), count)
        if spread and count < len(images):
            take = np.arange(count) * len(images) // count
        targets = examples.targets[take] if examples.aligned and not reverse else None
        return images[take], None if labels is None else labels[take], targets

    def sample(self, num_samples, seed=None, conditions=None, direction=None):
        """`Samples(translations, {"inputs", "labels", "targets"})` of `conditions["images"]` (uint8
        `[N, h, w, c]`, with optional `"labels"`), or of the first `num_samples` held-out inputs."""
        unknown = set(conditions or {}) - {"images", "labels"}
        if unknown:
            raise ValueError(f"{type(self).__name__} takes images (and their labels). Received: {sorted(unknown)}")
        if conditions and conditions.get("images") is not None:
            inputs = np.asarray(conditions["images"])
            labels, targets = conditions.get("labels"), None
            if num_samples is not None and num_samples != len(inputs):
                take = np.resize(np.arange(len(inputs)), num_samples)
                inputs = inputs[take]
                labels = None if labels is None else np.resize(np.asarray(labels), num_samples)
        else:
            directions = self.directions()
            inputs, labels, targets = self._held_out(num_samples, directions[direction or next(iter(directions))].reverse)
        outputs = self.translate(self.scaled(inputs), seed=seed, direction=direction)
        found = {"inputs": inputs}
        if labels is not None:
            found["labels"] = np.asarray(labels, np.int32)
        if targets is not None:
            found["targets"] = targets
        return Samples(outputs, found)

    def preview_columns(self, inputs, targets, seed):
        """The images of one preview row group, left to right: `[input, output, target]` (the
        target only when the data are paired). Float arrays in the value range."""
        outputs = self.translate(inputs, seed=seed)
        return [inputs, outputs] + ([targets] if targets is not None else [])

    def preview(self, rows, columns, seed):
        """`rows * columns` images: each row holds `columns // k` held-out examples, each as its
        `preview_columns` (k images), the rest of the row blank. The examples are spread evenly over
        the held-out set."""
        if self.examples is None:
            return np.full((rows * columns,) + self.image_shape, self.value_range[0], np.float32)
        inputs, _, targets = self._held_out(1)
        width = len(self.preview_columns(self.scaled(inputs), None if targets is None else self.scaled(targets), seed))
        per_row = max(1, columns // width)
        count = rows * per_row
        inputs, _, targets = self._held_out(count, spread=True)
        groups = self.preview_columns(self.scaled(inputs), None if targets is None else self.scaled(targets), seed)
        groups = [as_display(group, self.image_shape, self.value_range) for group in groups]
        return grouped_cells(groups, rows, columns, np.full(self.image_shape, self.value_range[0], np.float32))

    # -------------------------------------------------------------------------------- export

    def export_metadata(self):
        return translation_signatures.translation_metadata(self)

    def export_archive(self, metadata):
        return translation_signatures.build_export_archive(self, metadata)

    def warmup_requests(self):
        return translation_signatures.warmup_inputs(self)

    def get_config(self):
        return {"name": self.name, "source_shape": list(self.source_shape), "image_shape": list(self.image_shape),
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="gan_tf")
class ConstantThenLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`learning_rate` for the first `constant_steps` optimizer steps, then linearly down to 0
    over `decay_steps` (CycleGAN: 100 epochs constant, 100 decaying). A function of the
    optimizer's step count, which checkpoints hold: a resumed run continues on the same curve."""

    def __init__(self, learning_rate, constant_steps, decay_steps):
        if constant_steps < 0 or decay_steps < 1:
            raise ValueError(f"Need constant_steps >= 0 and decay_steps >= 1. Received: {constant_steps}, {decay_steps}")
        self.learning_rate = float(learning_rate)
        self.constant_steps = int(constant_steps)
        self.decay_steps = int(decay_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        remaining = 1.0 - tf.maximum(0.0, step - self.constant_steps) / self.decay_steps
        return self.learning_rate * tf.clip_by_value(remaining, 0.0, 1.0)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "constant_steps": self.constant_steps, "decay_steps": self.decay_steps}


def decaying_rate(learning_rate, total_steps, decay_fraction):
    """`learning_rate`, falling linearly to 0 over the last `decay_fraction` of a run of
    `total_steps` (at least one step; CycleGAN's 0.5: the second half); the constant
    `learning_rate` when the run's length is unknown or `decay_fraction` is 0."""
    if not total_steps or decay_fraction <= 0:
        return learning_rate
    decay_steps = max(1, math.ceil(decay_fraction * total_steps))
    return ConstantThenLinearDecay(learning_rate, total_steps - decay_steps, decay_steps)
