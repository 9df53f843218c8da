"""`AutoregressiveModel`: what the models of 8-bit images pixel by pixel share (the gated
PixelCNN, PixelRNN's Row LSTM and Diagonal BiLSTM): a 256-way softmax per pixel and channel, so
the log-likelihood is exact; training by `fit` on it; sampling in raster order with Gumbel noise
drawn up front, by a `naive` reference sampler (the whole network on the whole canvas for every
pixel) and a subclass's `cached` one, which draw the same images; the export's signatures
(`gan_tf.serving.pixelcnn_signatures`).

A subclass builds its layers and `self.output_hidden` / `self.output_logits` (see `build_head`),
and implements `logits(images, labels)` (`[batch, H, W, C, 256]`, each pixel's logits from the
pixels before it only), `_sample_cached(gumbel, labels)` and `get_config`.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from gan_tf.models.generative import Samples
from gan_tf.models.likelihood_model import LikelihoodModel
from gan_tf.nn import likelihoods
from gan_tf.serving.pixelcnn_signatures import (MAX_LIKELIHOOD_IMAGES, MAX_PIXELCNN_SAMPLES, build_export_archive,
                                                warmup_inputs)

SAMPLERS = ("cached", "naive")
# Images sampled per graph call (the export's cap per request, so its draws match chunk 0's).
SAMPLE_CHUNK = 64


def levels_of(images, value_range):
    """Images on the 256 levels of `value_range` -> int32 level indices 0..255."""
    low, high = value_range
    return ops.cast(ops.clip(ops.round((ops.cast(images, "float32") - low) / (high - low) * 255.0), 0, 255), "int32")


def gumbel_noise(shape, seed):
    """Gumbel(0, 1) noise, `-log(-log(u))` with `u ~ U(1e-20, 1)` from `keras.random.uniform`
    (an int seed draws what `tf.random.stateless_uniform(seed=[seed, 0])` draws)."""
    return -ops.log(-ops.log(keras.random.uniform(shape, minval=1e-20, maxval=1.0, seed=seed)))



class AutoregressiveModel(LikelihoodModel):
    """Base of the pixel-by-pixel models (see the module docstring)."""

    def build_head(self, filters, channels):
        """The output layers every position shares: ReLU, a 1x1 convolution of `filters`, ReLU,
        a 1x1 convolution to `channels x 256` logits; and the trackers `fit` reports."""
        self.output_hidden = keras.layers.Conv2D(filters, 1, activation="relu", name="output_hidden")
        self.output_logits = keras.layers.Conv2D(channels * 256, 1, dtype="float32", name="output_logits")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.bits_tracker = keras.metrics.Mean(name="bits_per_dim")
        self._samplers = {}  # traced sampling graphs, by sampler

    def _head(self, features):
        """`[batch, H, W, C, 256]` logits from the last layer's `[batch, H, W, F]` features."""
        logits = self.output_logits(self.output_hidden(ops.relu(features)))
        shape = ops.shape(logits)
        return ops.reshape(logits, (shape[0], shape[1], shape[2], self.image_shape[2], 256))

    def pixel_log_likelihood(self, images, labels=None):
        """Exact `log p(x)` per image (nats): the sum over pixels and channels of the
        log-softmax of the observed level."""
        levels = levels_of(images, self.value_range)
        log_probabilities = ops.log_softmax(self.logits(images, labels), axis=-1)
        observed = ops.take_along_axis(log_probabilities, levels[..., None], axis=-1)[..., 0]
        return ops.sum(ops.reshape(observed, (ops.shape(observed)[0], -1)), axis=1)

    @property
    def metrics(self):
        return [self.loss_tracker, self.bits_tracker]

    def training_labels(self, labels):
        """The labels a training step conditions on (a subclass may drop some); `labels` here."""
        return labels

    def train_step(self, data):
        images, labels = self.unpack(data)
        labels = self.training_labels(labels)
        with tf.GradientTape() as tape:
            nll = -self.pixel_log_likelihood(images, labels)
            loss = self.optimizer.scale_loss(tf.nn.compute_average_loss(nll))
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        self.loss_tracker.update_state(nll)
        self.bits_tracker.update_state(likelihoods.bits_per_dim(-nll, self.dimensions))
        return self.train_step_logs()

    # ------------------------------------------------------------------------------ sample

    def level_values(self, levels):
        """Level indices 0..255 -> pixel values in `value_range`."""
        low, high = self.value_range
        return ops.cast(levels, "float32") / 255.0 * (high - low) + low

    def _draw(self, logits, gumbel):
        """Levels from `[batch, C, 256]` logits by the Gumbel-max trick with the given noise."""
        return ops.argmax(logits + gumbel, axis=-1)

    def sample(self, num_samples, seed=None, conditions=None, sampler="cached"):
        """`Samples(images, {"labels": ...} or None)`, drawn pixel by pixel in raster order.

        The random numbers of pixel (i, j) are Gumbel noise drawn up front from `seed` (the
        model's stream when None), so the two samplers, given one seed, draw the same images:
        `"naive"` runs the whole network on the whole canvas for every pixel; `"cached"` is the
        model's own `_sample_cached`, which keeps what the pixels done computed (they never
        change again) and reruns only what the next pixel needs.
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"`sampler` must be one of {SAMPLERS}. Received: sampler={sampler!r}")
        count = int(num_samples)
        labels = self.labels_for(count, conditions)
        if sampler not in self._samplers:
            self._samplers[sampler] = tf.function(lambda g, y: self.sample_levels(g, y, sampler), reduce_retracing=True)
        chunks = []
        for index, start in enumerate(range(0, count, SAMPLE_CHUNK)):
            # Chunk k draws its noise from seed + k (chunk 0: what an export draws from `seed`).
            size = min(SAMPLE_CHUNK, count - start)
            gumbel = gumbel_noise((size,) + self.image_shape + (256,), self.seed_generator if seed is None else seed + index)
            chunk_labels = None if labels is None else ops.convert_to_tensor(labels[start : start + size])
            chunks.append(np.asarray(self.level_values(self._samplers[sampler](gumbel, chunk_labels))))
        images = np.concatenate(chunks) if chunks else np.zeros((0,) + self.image_shape, np.float32)
        return Samples(images, None if labels is None else {"labels": labels})

    def _sample_naive(self, gumbel, labels):
        """The reference sampler, as one graph: for each pixel, the whole network on the canvas."""
        height, width, channels = self.image_shape
        count = tf.shape(gumbel)[0]

        def body(position, canvas):
            i, j = position // width, position % width
            logits = tf.gather(tf.gather(self.logits(canvas, labels), i, axis=1), j, axis=1)  # [batch, C, 256]
            values = self.level_values(self._draw(logits, tf.gather(tf.gather(gumbel, i, axis=1), j, axis=1)))
            mask = tf.reshape(tf.one_hot(position, height * width), (1, height, width, 1))
            return position + 1, canvas * (1.0 - mask) + values[:, None, None, :] * mask

        canvas = tf.zeros(tf.stack([count, height, width, channels]))
        _, canvas = tf.while_loop(lambda position, _: position < height * width, body, [tf.constant(0), canvas])
        return levels_of(canvas, self.value_range)

    def sample_levels(self, gumbel, labels=None, sampler="cached"):
        """Levels `int32 [batch, H, W, C]` drawn with the Gumbel noise `[batch, H, W, C, 256]`
        (graph code: `sample` and the exported signatures call it)."""
        return (self._sample_cached if sampler == "cached" else self._sample_naive)(gumbel, labels)

    # -------------------------------------------------------------------------- likelihood

    def log_likelihood(self, images, conditions=None, seed=0, batch_size=64):
        """Exact log-likelihoods of uint8 `images`: `{"log_likelihood": nats [N], "bits_per_dim"}`."""
        labels = self.labels_for(len(images), conditions)
        scaled = self.scaled(images)
        values = []
        for start in range(0, len(images), batch_size):
            chunk_labels = None if labels is None else ops.convert_to_tensor(labels[start : start + batch_size])
            values.append(ops.convert_to_numpy(self.pixel_log_likelihood(scaled[start : start + batch_size], chunk_labels)))
        log_likelihood = np.concatenate(values) if values else np.zeros([0], np.float32)
        return {"log_likelihood": log_likelihood,
                "bits_per_dim": np.asarray(likelihoods.bits_per_dim(log_likelihood, self.dimensions))}

    # ------------------------------------------------------------------------ the contract

    def call(self, inputs, training=False):
        """The logits of `images` (a conditional model: `[images, labels]`)."""
        if self.num_classes:
            return self.logits(inputs[0], inputs[1])
        return self.logits(inputs)

    def export_metadata(self):
        return {"model": type(self).__name__, "image_shape": list(self.image_shape),
                "value_range": list(self.value_range), "conditional": bool(self.num_classes),
                "num_classes": self.num_classes,
                "signatures": ["serving_default", "sample", "sample_seeded", "log_likelihood", "metadata"],
                "truncation_input": False, "max_samples": MAX_PIXELCNN_SAMPLES,
                "likelihood": {"signature": "log_likelihood", "exact": True, "max_images": MAX_LIKELIHOOD_IMAGES,
                               "pixels": "256-way softmax per pixel and channel"}}

    def export_archive(self, metadata):
        return build_export_archive(self, metadata)

    def warmup_requests(self):
        return warmup_inputs(self)

