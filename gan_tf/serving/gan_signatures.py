"""A GAN's serving signatures: latent vectors (and labels) in, images out.

What `GAN.export_metadata`, `GAN.export_archive` and `GAN.warmup_requests` (the model contract,
`gan_tf.models.generative`) return for every GAN; `gan_tf.serving.export` writes them out. Signatures (inputs and
outputs are named; `labels` only for class-conditional GANs):

* `serving_default`: `z` float32 `[batch, latent_dim]`, `labels` int32 `[batch]`
  -> `images` float32 `[batch, H, W, C]` in the training value range, `images_uint8` uint8.
* `sample`: `num_samples` int32 scalar, `labels` int32 `[1 or num_samples]` -> the same outputs,
  from fresh random noise: a client need not know the latent size.
* `sample_seeded`: `num_samples`, `seed` int64 scalar, `labels` -> the same outputs, reproducibly:
  the images equal `gan.generate(num_samples, seed=seed)` of the Keras model.
* BigGAN's `sample` and `sample_seeded` also take `truncation`, float32 scalar: noise truncated to
  `[-truncation, truncation]` when positive (the truncation trick), untruncated when 0.
* `metadata`: no inputs -> `latent_dim`, `image_shape`, `value_range`, `class_names`,
  `max_samples` and `metadata_json` (which also holds the training config).

Bad input is rejected with `INVALID_ARGUMENT` and a message naming the input: a wrong latent
size, NaN or infinite values in `z`, more than `MAX_SAMPLES` rows of `z`, a label outside
`[0, num_classes)`, `num_samples` below 0 or above `MAX_SAMPLES`, `z` and `labels` of different
lengths, a negative or non-finite `truncation`. Wrong dtypes and ranks are refused by the
signatures' typed inputs (tests/test_serving.py sends a few hundred malformed requests).
"""

import json

import keras
import numpy as np
import tensorflow as tf

from gan_tf.nn.noise import stateless_noise
from gan_tf.serving.export import MAX_SAMPLES

SIGNATURES = ("serving_default", "sample", "sample_seeded", "metadata")


def gan_metadata(gan):
    """What a client needs to know about an exported GAN, as a JSON-able dict."""
    num_classes = getattr(gan, "num_classes", None) if gan.conditional else None
    return {
        "model": type(gan).__name__,
        "latent_dim": gan.latent_dim,
        "image_shape": list(gan.sampling_generator.output_shape[1:]),
        "value_range": list(gan.value_range),
        "noise": gan.noise,
        "conditional": bool(gan.conditional),
        "num_classes": num_classes,
        "signatures": list(SIGNATURES),
        "truncation_input": bool(gan.exports_truncation),
    }


class LatentEndpoints:
    """The signature functions of a model that maps latent vectors (and labels) to images:
    `model.sampling_generator`, `latent_dim`, `noise`, `conditional`, `num_classes`,
    `value_range` (every GAN, and the VAE's decoder). `validate_*` raise INVALID_ARGUMENT."""

    def __init__(self, gan, metadata):
        self.gan = gan
        self.metadata = metadata

    def outputs(self, noise, labels):
        inputs = [noise, labels] if self.gan.conditional else noise
        images = self.gan.sampling_generator(inputs, training=False)
        low, high = self.gan.value_range
        unit = tf.clip_by_value((images - low) / (high - low), 0.0, 1.0)
        return {"images": images, "images_uint8": tf.cast(tf.round(unit * 255.0), tf.uint8)}

    def validated_noise(self, z):
        """`z` after run-time checks of its latent size (a signature's static shape alone is
        not enforced on every path a request can take), its row count (at most `MAX_SAMPLES`,
        as for `num_samples`: a larger batch would be a request for gigabytes of images) and
        its values (finite: NaN or infinite noise gives NaN images)."""
        latent_dim = self.gan.latent_dim
        checks = [
            tf.debugging.Assert(
                tf.equal(tf.shape(z)[-1], latent_dim),
                [f"z must have shape (batch, {latent_dim}), one latent vector per row"],
            ),
            tf.debugging.Assert(
                tf.less_equal(tf.shape(z)[0], MAX_SAMPLES),
                [f"z must have at most {MAX_SAMPLES} rows per request"],
            ),
            tf.debugging.Assert(
                # Flattened: a request of another rank then fails at the first layer, which names it.
                tf.reduce_all(tf.math.is_finite(tf.reshape(z, [-1]))), ["z must be finite (no NaN or infinite values)"]
            ),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(z)

    def validated_truncation(self, truncation):
        check = tf.debugging.Assert(
            tf.logical_and(tf.math.is_finite(truncation), truncation >= 0.0),
            ["truncation must be a finite number >= 0 (0: untruncated)"],
        )
        with tf.control_dependencies([check]):
            return tf.identity(truncation)

    def validate_labels(self, labels):
        num_classes = self.gan.num_classes
        return [
            tf.debugging.assert_non_negative(labels, message="labels must be >= 0"),
            tf.debugging.assert_less(labels, num_classes, message=f"labels must be < num_classes={num_classes}"),
        ]

    def validate_num_samples(self, num_samples):
        return [
            tf.debugging.assert_non_negative(num_samples, message="num_samples must be >= 0"),
            tf.debugging.assert_less_equal(
                num_samples, MAX_SAMPLES, message=f"num_samples must be <= {MAX_SAMPLES} per request"
            ),
        ]

    def broadcast_labels(self, labels, num_samples):
        """`labels` of length 1 repeated `num_samples` times, or of length `num_samples`."""
        count = tf.shape(labels)[0]
        check = tf.debugging.assert_equal(
            tf.logical_or(tf.equal(count, 1), tf.equal(count, num_samples)),
            True,
            message="labels must hold 1 label (used for every sample) or num_samples labels",
        )
        with tf.control_dependencies([check]):
            return tf.cond(tf.equal(count, 1), lambda: tf.repeat(labels, num_samples), lambda: tf.identity(labels))

    def prior_noise(self, noise):
        """The latent that `sample` signatures decode, from the noise drawn: the noise itself."""
        return noise

    def sampled(self, num_samples, seed_pair, labels, truncation=None):
        if truncation is not None:
            truncation = self.validated_truncation(truncation)
        with tf.control_dependencies(self.validate_num_samples(num_samples)):
            noise = stateless_noise(
                self.gan.noise, tf.stack([num_samples, self.gan.latent_dim]), seed_pair, truncation
            )
        noise = self.prior_noise(noise)
        if labels is not None:
            labels = self.broadcast_labels(labels, num_samples)
            with tf.control_dependencies(self.validate_labels(labels)):
                labels = tf.identity(labels)
        return self.outputs(noise, labels)

    def metadata_tensors(self):
        meta = self.metadata
        return {
            "latent_dim": tf.constant(meta["latent_dim"], tf.int32),
            "image_shape": tf.constant(meta["image_shape"], tf.int32),
            "value_range": tf.constant(meta["value_range"], tf.float32),
            "class_names": tf.constant(meta["class_names"], tf.string, shape=[len(meta["class_names"])]),
            "max_samples": tf.constant(MAX_SAMPLES, tf.int32),
            "metadata_json": tf.constant(json.dumps(meta, sort_keys=True)),
        }


def _random_seed_pair():
    return tf.random.uniform([2], maxval=tf.int64.max, dtype=tf.int64)


def build_export_archive(gan, metadata):
    """A `keras.export.ExportArchive` of `gan`'s sampling generator with the four signatures.

    Models with `exports_truncation` (BigGAN) take a float32 scalar `truncation` in `sample`
    and `sample_seeded` too: positive values truncate the noise to `[-truncation,
    truncation]`, 0 draws it untruncated.
    """
    endpoints = LatentEndpoints(gan, metadata)
    archive = keras.export.ExportArchive()
    archive.track(gan.sampling_generator)
    z = tf.TensorSpec([None, gan.latent_dim], tf.float32, name="z")
    num_samples = tf.TensorSpec([], tf.int32, name="num_samples")
    seed = tf.TensorSpec([], tf.int64, name="seed")
    labels = tf.TensorSpec([None], tf.int32, name="labels")
    truncation = tf.TensorSpec([], tf.float32, name="truncation")

    if gan.conditional:

        def serve(z, labels):
            same_length = tf.debugging.assert_equal(
                tf.shape(z)[0], tf.shape(labels)[0], message="z and labels must have the same batch size"
            )
            with tf.control_dependencies([same_length, *endpoints.validate_labels(labels)]):
                return endpoints.outputs(endpoints.validated_noise(z), labels)

        archive.add_endpoint("serving_default", serve, input_signature=[z, labels])
        if gan.exports_truncation:

            def sample(num_samples, labels, truncation):
                return endpoints.sampled(num_samples, _random_seed_pair(), labels, truncation)

            def sample_seeded(num_samples, seed, labels, truncation):
                return endpoints.sampled(num_samples, tf.stack([seed, 0]), labels, truncation)

            archive.add_endpoint("sample", sample, input_signature=[num_samples, labels, truncation])
            archive.add_endpoint(
                "sample_seeded", sample_seeded, input_signature=[num_samples, seed, labels, truncation]
            )
        else:

            def sample(num_samples, labels):
                return endpoints.sampled(num_samples, _random_seed_pair(), labels)

            def sample_seeded(num_samples, seed, labels):
                return endpoints.sampled(num_samples, tf.stack([seed, 0]), labels)

            archive.add_endpoint("sample", sample, input_signature=[num_samples, labels])
            archive.add_endpoint("sample_seeded", sample_seeded, input_signature=[num_samples, seed, labels])
    else:
        if gan.exports_truncation:
            raise NotImplementedError("`truncation` inputs are exported for conditional models only.")

        def serve(z):
            return endpoints.outputs(endpoints.validated_noise(z), None)

        def sample(num_samples):
            return endpoints.sampled(num_samples, _random_seed_pair(), None)

        def sample_seeded(num_samples, seed):
            return endpoints.sampled(num_samples, tf.stack([seed, 0]), None)

        archive.add_endpoint("serving_default", serve, input_signature=[z])
        archive.add_endpoint("sample", sample, input_signature=[num_samples])
        archive.add_endpoint("sample_seeded", sample_seeded, input_signature=[num_samples, seed])
    archive.add_endpoint("metadata", endpoints.metadata_tensors, input_signature=[])
    return archive


def warmup_inputs(gan, batch_sizes=(1, 8)):
    """`[(signature_name, inputs)]` that run each signature once: `serving_default` at each of
    `batch_sizes`, then `sample` and `sample_seeded`."""
    requests = []
    for batch_size in batch_sizes:
        inputs = {"z": np.zeros((batch_size, gan.latent_dim), np.float32)}
        if gan.conditional:
            inputs["labels"] = np.arange(batch_size, dtype=np.int32) % gan.num_classes
        requests.append(("serving_default", inputs))
    sample_inputs = {"num_samples": np.int32(batch_sizes[-1])}
    if gan.conditional:
        sample_inputs["labels"] = np.zeros([1], np.int32)
    if gan.exports_truncation:
        sample_inputs["truncation"] = np.float32(0.0)
    requests.append(("sample", sample_inputs))
    requests.append(("sample_seeded", {**sample_inputs, "seed": np.int64(0)}))
    return requests
