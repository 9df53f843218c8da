"""A VAE's serving signatures: the GANs' latent signatures for its decoder, plus `encode` and
`log_likelihood` for images.

What `VAE.export_metadata`, `VAE.export_archive` and `VAE.warmup_requests` return (the model
contract); `gan_tf.serving.export` writes them out. Inputs and outputs are named; `labels` only for a
CVAE:

* `serving_default` and `decode`: `z` float32 `[batch, latent_dim]`, `labels` int32 `[batch]` ->
  `images` float32 `[batch, H, W, C]` in [-1, 1] (the decoder's mean), `images_uint8` uint8.
* `sample`, `sample_seeded`: as the GANs' (`gan_tf.serving.gan_signatures`): z drawn from the prior,
  times the model's sampling `temperature`.
* `encode`: `images_uint8` uint8 `[batch, H, W, C]`, `labels` -> `mean`, `log_variance` float32
  `[batch, latent_dim]` of `q(z|x)`.
* `log_likelihood`: `images_uint8`, `seed` int64 scalar, `labels` -> `elbo`, `log_likelihood`
  (the importance-weighted bound with the model's `importance_samples`; nats per image) and
  `bits_per_dim` float32 `[batch]`, at most `MAX_LIKELIHOOD_IMAGES` images per request.
* `metadata`: as the GANs'.

Bad input is rejected with INVALID_ARGUMENT naming it: the GANs' checks for z, labels and
`num_samples`, and for images: a size other than the model's `H x W x C`, more rows than the cap.
"""

import keras
import numpy as np
import tensorflow as tf

from gan_tf.nn import likelihoods
from gan_tf.serving.export import MAX_SAMPLES
from gan_tf.serving.gan_signatures import LatentEndpoints, _random_seed_pair

SIGNATURES = ("serving_default", "decode", "sample", "sample_seeded", "encode", "log_likelihood", "metadata")
# Images per `log_likelihood` request: each costs `importance_samples` decoder passes.
MAX_LIKELIHOOD_IMAGES = 64


def vae_metadata(vae):
    """What a client needs to know about an exported VAE, as a JSON-able dict."""
    return {
        "model": type(vae).__name__,
        "latent_dim": vae.latent_dim,
        "image_shape": list(vae.image_shape),
        "value_range": list(vae.value_range),
        "noise": vae.noise,
        "conditional": bool(vae.conditional),
        "num_classes": vae.num_classes,
        "signatures": list(SIGNATURES),
        "truncation_input": False,
        "temperature": vae.temperature,
        "likelihood": {"signature": "log_likelihood", "importance_samples": vae.importance_samples,
                       "max_images": MAX_LIKELIHOOD_IMAGES, "pixels": "discretised logistic, 256 levels"},
    }


class _ImageEndpoints(LatentEndpoints):
    def prior_noise(self, noise):
        """The VAE's sampling temperature times the prior's noise (`VAE.sample` draws the same)."""
        return self.gan.temperature * noise

    def validated_images(self, images_uint8, max_rows):
        """`images_uint8` scaled to the value range, after checks of its size and row count."""
        expected = list(self.gan.image_shape)
        checks = [
            tf.debugging.Assert(
                tf.reduce_all(tf.equal(tf.shape(images_uint8)[1:], expected)),
                [f"images_uint8 must have shape (batch, {', '.join(map(str, expected))})"],
            ),
            tf.debugging.Assert(tf.less_equal(tf.shape(images_uint8)[0], max_rows),
                                [f"images_uint8 must have at most {max_rows} rows per request"]),
        ]
        with tf.control_dependencies(checks):
            low, high = self.gan.value_range
            return tf.cast(images_uint8, tf.float32) / 255.0 * (high - low) + low

    def checked_labels(self, labels, images):
        same_length = tf.debugging.assert_equal(tf.shape(images)[0], tf.shape(labels)[0],
                                                message="images_uint8 and labels must have the same batch size")
        with tf.control_dependencies([same_length, *self.validate_labels(labels)]):
            return tf.identity(labels)

    def encode(self, images_uint8, labels=None):
        images = self.validated_images(images_uint8, MAX_SAMPLES)
        if labels is not None:
            labels = self.checked_labels(labels, images)
        mean, log_variance = self.gan.posterior(images, labels)
        return {"mean": mean, "log_variance": log_variance}

    def log_likelihood(self, images_uint8, seed, labels=None):
        images = self.validated_images(images_uint8, MAX_LIKELIHOOD_IMAGES)
        if labels is not None:
            labels = self.checked_labels(labels, images)
        shape = tf.stack([tf.shape(images)[0], self.gan.importance_samples, self.gan.latent_dim])
        eps = tf.random.stateless_normal(shape, seed=tf.stack([seed, 0]))
        elbo, bound = self.gan.log_likelihood_bounds(images, labels, eps)
        return {"elbo": elbo, "log_likelihood": bound,
                "bits_per_dim": likelihoods.bits_per_dim(bound, self.gan.dimensions)}


def build_export_archive(vae, metadata):
    """A `keras.export.ExportArchive` of `vae` with the signatures in the module docstring."""
    endpoints = _ImageEndpoints(vae, metadata)
    archive = keras.export.ExportArchive()
    archive.track(vae)
    z = tf.TensorSpec([None, vae.latent_dim], tf.float32, name="z")
    images = tf.TensorSpec([None, *vae.image_shape], tf.uint8, name="images_uint8")
    num_samples = tf.TensorSpec([], tf.int32, name="num_samples")
    seed = tf.TensorSpec([], tf.int64, name="seed")
    labels = tf.TensorSpec([None], tf.int32, name="labels")

    if vae.conditional:
        def decode(z, labels):
            checked = tf.debugging.assert_equal(tf.shape(z)[0], tf.shape(labels)[0],
                                                message="z and labels must have the same batch size")
            with tf.control_dependencies([checked, *endpoints.validate_labels(labels)]):
                return endpoints.outputs(endpoints.validated_noise(z), labels)

        signatures = {
            "decode": (decode, [z, labels]),
            "sample": (lambda num_samples, labels: endpoints.sampled(num_samples, _random_seed_pair(), labels),
                       [num_samples, labels]),
            "sample_seeded": (lambda num_samples, seed, labels: endpoints.sampled(num_samples, tf.stack([seed, 0]), labels),
                              [num_samples, seed, labels]),
            "encode": (lambda images_uint8, labels: endpoints.encode(images_uint8, labels), [images, labels]),
            "log_likelihood": (lambda images_uint8, seed, labels: endpoints.log_likelihood(images_uint8, seed, labels),
                               [images, seed, labels]),
        }
    else:
        signatures = {
            "decode": (lambda z: endpoints.outputs(endpoints.validated_noise(z), None), [z]),
            "sample": (lambda num_samples: endpoints.sampled(num_samples, _random_seed_pair(), None), [num_samples]),
            "sample_seeded": (lambda num_samples, seed: endpoints.sampled(num_samples, tf.stack([seed, 0]), None),
                              [num_samples, seed]),
            "encode": (lambda images_uint8: endpoints.encode(images_uint8), [images]),
            "log_likelihood": (lambda images_uint8, seed: endpoints.log_likelihood(images_uint8, seed), [images, seed]),
        }
    decode_function, decode_specs = signatures["decode"]
    archive.add_endpoint("serving_default", decode_function, input_signature=decode_specs)
    for name, (function, specs) in signatures.items():
        archive.add_endpoint(name, function, input_signature=specs)
    archive.add_endpoint("metadata", lambda: endpoints.metadata_tensors(), input_signature=[])
    return archive


def warmup_inputs(vae):
    """`[(signature_name, inputs)]` running each signature once (TF Serving does on load)."""
    labels = {"labels": np.zeros([2], np.int32)} if vae.conditional else {}
    one_label = {"labels": np.zeros([1], np.int32)} if vae.conditional else {}
    images = np.zeros((2, *vae.image_shape), np.uint8)
    return [
        ("serving_default", {"z": np.zeros((2, vae.latent_dim), np.float32), **labels}),
        ("sample", {"num_samples": np.int32(2), **one_label}),
        ("sample_seeded", {"num_samples": np.int32(2), "seed": np.int64(0), **one_label}),
        ("encode", {"images_uint8": images, **labels}),
        ("log_likelihood", {"images_uint8": images, "seed": np.int64(0), **labels}),
    ]

