"""`LikelihoodModel`: what the models trained on a likelihood with one optimizer share (the VAEs,
the PixelCNNs): one optimizer role, the optional class condition, bits per dimension.

A subclass sets `self.image_shape` and `self.num_classes` (None: unconditional) in its
constructor and implements `train_step`, `sample`, `log_likelihood` and the export methods; its
class-conditional variant sets `needs_labels = True` and `conditional = True`.
"""

import keras
import numpy as np
from keras import ops

from gan_tf.models.generative import GenerativeModel
from gan_tf.models.multi_worker import MultiWorkerWorkarounds


class LikelihoodModel(MultiWorkerWorkarounds, GenerativeModel):
    """Base of the single-optimizer, likelihood-trained models (see the module docstring)."""

    value_range = (-1.0, 1.0)
    conditional = False

    @classmethod
    def from_data(cls, info, **model_args):
        """An unconditional model ignores the data's classes; a conditional one uses them."""
        cls.check_modality(info)
        if cls.needs_labels:
            return super().from_data(info, **model_args)
        return cls(image_shape=tuple(info.image_shape), **model_args)

    @property
    def dimensions(self):
        """Pixels times channels: what bits per dimension divide by."""
        return int(np.prod(self.image_shape))

    def default_optimizers(self):
        """`{"model": Adam(1e-3)}`."""
        return {"model": keras.optimizers.Adam(1e-3, name="adam")}

    def compile_optimizers(self, optimizers, **compile_kwargs):
        unknown = set(optimizers) - {"model"}
        if unknown:
            raise ValueError(f"{type(self).__name__}'s one optimizer role is 'model'. Received: {sorted(unknown)}")
        self.compile(optimizer=optimizers.get("model") or self.default_optimizers()["model"], **compile_kwargs)
        # Built here, not at the first step: resuming restores its state, tf.distribute runs it.
        self.optimizer.build(self.trainable_variables)
        self.optimizers_built = True

    def optimizer_roles(self):
        return {"model": self.optimizer}

    def unpack(self, data):
        """`(images, labels or None)` of a batch; a conditional model needs `(images, labels)`."""
        images = data[0] if isinstance(data, (tuple, list)) else data
        labels = ops.cast(data[1], "int32") if isinstance(data, (tuple, list)) and len(data) > 1 else None
        if self.num_classes and labels is None:
            raise ValueError(f"{type(self).__name__} trains on (images, labels) batches; the dataset yields images only.")
        return images, labels if self.num_classes else None

    def labels_for(self, count, conditions):
        """The `count` labels `conditions` asks for (cycled; classes 0, 1, 2, ... by default), or
        None for an unconditional model; ValueError for anything else."""
        unknown = set(conditions or {}) - {"labels"}
        if unknown or (conditions and not self.num_classes):
            raise ValueError(f"{type(self).__name__} takes {'labels only' if self.num_classes else 'no conditions'}. "
                             f"Received: {sorted(conditions)}")
        if not self.num_classes:
            return None
        labels = (conditions or {}).get("labels")
        labels = np.arange(count) % self.num_classes if labels is None else np.resize(np.asarray(labels).reshape(-1), count)
        labels = labels.astype(np.int32)
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must be in [0, {self.num_classes}). Received labels from {labels.min()} to {labels.max()}")
        return labels


    def preview(self, rows, columns, seed):
        """A conditional model's row k is class k."""
        conditions = {"labels": np.repeat(np.arange(rows) % self.num_classes, columns)} if self.num_classes else None
        return self.sample(rows * columns, seed=seed, conditions=conditions).images
