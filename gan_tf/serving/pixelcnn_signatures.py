"""A PixelCNN's serving signatures: samples drawn pixel by pixel, and exact log-likelihoods.

What `PixelCNN.export_archive` returns (the model contract); `gan_tf.serving.export` writes it out.
Inputs and outputs are named; `labels` only for a `ConditionalPixelCNN`:

* `sample`: `num_samples` int32 scalar, `labels` int32 `[1 or num_samples]` -> `images` float32
  `[N, H, W, C]` in [-1, 1], `images_uint8` uint8, drawn with the cached sampler.
* `sample_seeded` (also `serving_default`): `num_samples`, `seed` int64 scalar, `labels` -> the
  same, reproducibly: equal to `model.sample(num_samples, seed=seed)` in Keras.
* `log_likelihood`: `images_uint8` uint8 `[N, H, W, C]`, `seed` int64 (unused: the likelihood is
  exact; kept so every likelihood signature takes the same inputs), `labels` -> `log_likelihood`
  (nats) and `bits_per_dim`, float32 `[N]`.
* `metadata`: `image_shape`, `value_range`, `class_names`, `max_samples`, `metadata_json`.

Sampling is sequential (H x W steps per request), so requests are capped at `MAX_PIXELCNN_SAMPLES`
images, and likelihood requests at `MAX_LIKELIHOOD_IMAGES`.
"""

import json

import keras
import numpy as np
import tensorflow as tf

from gan_tf.nn import likelihoods
from gan_tf.serving.vae_signatures import MAX_LIKELIHOOD_IMAGES

# Images per `sample` request: each takes H x W sequential steps (about 0.1 s per 28x28 image
# on two CPU cores with the cached sampler).
MAX_PIXELCNN_SAMPLES = 64


def build_export_archive(model, metadata):
    """A `keras.export.ExportArchive` of `model` with the signatures in the module docstring."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    height, width, channels = model.image_shape
    conditional = bool(model.num_classes)

    def check_labels(labels, count):
        checks = [tf.debugging.assert_non_negative(labels, message="labels must be >= 0"),
                  tf.debugging.assert_less(labels, model.num_classes, message=f"labels must be < num_classes={model.num_classes}")]
        ok = tf.logical_or(tf.equal(tf.shape(labels)[0], 1), tf.equal(tf.shape(labels)[0], count))
        checks.append(tf.debugging.assert_equal(ok, True, message="labels must hold 1 label or one per image"))
        with tf.control_dependencies(checks):
            return tf.cond(tf.equal(tf.shape(labels)[0], 1), lambda: tf.repeat(labels, count), lambda: tf.identity(labels))

    def outputs(levels):
        return {"images": model.level_values(levels), "images_uint8": tf.cast(levels, tf.uint8)}

    def sampled(num_samples, seed, labels):
        checks = [tf.debugging.assert_non_negative(num_samples, message="num_samples must be >= 0"),
                  tf.debugging.assert_less_equal(num_samples, MAX_PIXELCNN_SAMPLES,
                                                 message=f"num_samples must be <= {MAX_PIXELCNN_SAMPLES} per request")]
        with tf.control_dependencies(checks):
            shape = tf.stack([num_samples, height, width, channels, 256])
            gumbel = -tf.math.log(-tf.math.log(tf.random.stateless_uniform(shape, seed=seed, minval=1e-20, maxval=1.0)))
        if labels is not None:
            labels = check_labels(labels, num_samples)
        return outputs(model.sample_levels(gumbel, labels))

    def likelihood(images_uint8, labels):
        checks = [
            tf.debugging.Assert(tf.reduce_all(tf.equal(tf.shape(images_uint8)[1:], list(model.image_shape))),
                                [f"images_uint8 must have shape (batch, {height}, {width}, {channels})"]),
            tf.debugging.Assert(tf.less_equal(tf.shape(images_uint8)[0], MAX_LIKELIHOOD_IMAGES),
                                [f"images_uint8 must have at most {MAX_LIKELIHOOD_IMAGES} rows per request"]),
        ]
        with tf.control_dependencies(checks):
            images = model.level_values(images_uint8)
        if labels is not None:
            same = tf.debugging.assert_equal(tf.shape(labels)[0], tf.shape(images)[0],
                                             message="images_uint8 and labels must have the same batch size")
            with tf.control_dependencies([same]):
                labels = check_labels(labels, tf.shape(images)[0])
        log_likelihood = model.pixel_log_likelihood(images, labels)
        return {"log_likelihood": log_likelihood, "bits_per_dim": likelihoods.bits_per_dim(log_likelihood, model.dimensions)}

    num_samples = tf.TensorSpec([], tf.int32, name="num_samples")
    seed = tf.TensorSpec([], tf.int64, name="seed")
    labels = tf.TensorSpec([None], tf.int32, name="labels")
    images = tf.TensorSpec([None, height, width, channels], tf.uint8, name="images_uint8")
    random_pair = lambda: tf.random.uniform([2], maxval=tf.int64.max, dtype=tf.int64)  # noqa: E731
    if conditional:
        signatures = {
            "sample": (lambda num_samples, labels: sampled(num_samples, random_pair(), labels), [num_samples, labels]),
            "sample_seeded": (lambda num_samples, seed, labels: sampled(num_samples, tf.stack([seed, 0]), labels),
                              [num_samples, seed, labels]),
            "log_likelihood": (lambda images_uint8, seed, labels: likelihood(images_uint8, labels), [images, seed, labels]),
        }
    else:
        signatures = {
            "sample": (lambda num_samples: sampled(num_samples, random_pair(), None), [num_samples]),
            "sample_seeded": (lambda num_samples, seed: sampled(num_samples, tf.stack([seed, 0]), None), [num_samples, seed]),
            "log_likelihood": (lambda images_uint8, seed: likelihood(images_uint8, None), [images, seed]),
        }
    default_function, default_specs = signatures["sample_seeded"]
    archive.add_endpoint("serving_default", default_function, input_signature=default_specs)
    for name, (function, specs) in signatures.items():
        archive.add_endpoint(name, function, input_signature=specs)

    def metadata_tensors():
        return {
            "image_shape": tf.constant(metadata["image_shape"], tf.int32),
            "value_range": tf.constant(metadata["value_range"], tf.float32),
            "class_names": tf.constant(metadata["class_names"], tf.string, shape=[len(metadata["class_names"])]),
            "max_samples": tf.constant(MAX_PIXELCNN_SAMPLES, tf.int32),
            "metadata_json": tf.constant(json.dumps(metadata, sort_keys=True)),
        }

    archive.add_endpoint("metadata", metadata_tensors, input_signature=[])
    return archive


def warmup_inputs(model):
    """`[(signature_name, inputs)]` TF Serving runs on load (one small sample, one likelihood)."""
    labels = {"labels": np.zeros([1], np.int32)} if model.num_classes else {}
    two_labels = {"labels": np.zeros([2], np.int32)} if model.num_classes else {}
    return [("sample_seeded", {"num_samples": np.int32(1), "seed": np.int64(0), **labels}),
            ("log_likelihood", {"images_uint8": np.zeros((2,) + tuple(model.image_shape), np.uint8),
                                "seed": np.int64(0), **two_labels})]

