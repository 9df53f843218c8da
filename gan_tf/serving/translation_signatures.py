"""A translation model's serving signatures: images in, translated images out.

What `TranslationModel.export_metadata`, `export_archive` and `warmup_requests` return (the model
contract); `gan_tf.serving.export` writes them out. For each of the model's `directions()` (Pix2Pix:
`translate`; CycleGAN: `a_to_b` and `b_to_a`), inputs and outputs named:

* `<direction>`: `images_uint8` uint8 `[batch, H, W, C]` (the direction's input shape) ->
  `images` float32 `[batch, H', W', C']` in the training value range, `images_uint8` uint8. A
  stochastic direction (Pix2Pix's dropout) draws fresh noise per request.
* `<direction>_seeded` (stochastic directions only): `images_uint8`, `seed` int64 scalar -> the
  same outputs, reproducibly: example i of the batch is translated with seed `[seed, i]`, as
  `model.translate(images, seed=seed)` does in Keras. `seed` may also be `[seed, first_index]`:
  example i then gets `[seed, first_index + i]`, so a long seeded translation sent in chunks
  (each request holds at most `MAX_IMAGES`) gives the same images as one Keras call.
* `serving_default` is the first direction (unseeded).
* `metadata`: no inputs -> `image_shape`, `source_shape`, `value_range`, `max_images`,
  `metadata_json`.

Bad input is rejected with INVALID_ARGUMENT naming it: a rank other than 4, a size or channel
count other than the direction's, more than `MAX_IMAGES` images, an empty batch.
"""

import json

import keras
import numpy as np
import tensorflow as tf

# The most images one translation request may carry (a 256x256 RGB float image is 768 KiB).
MAX_IMAGES = 256


def translation_metadata(model):
    """What a client needs to know about an exported translation model, as a JSON-able dict."""
    directions = model.directions()
    names = list(directions)
    signatures = ["serving_default"] + [n for name in names for n in ([name, f"{name}_seeded"] if directions[name].stochastic else [name])]
    return {
        "model": type(model).__name__,
        "image_shape": list(model.image_shape),
        "source_shape": list(model.source_shape),
        "value_range": list(model.value_range),
        "conditional": False,
        "num_classes": None,
        "translation": {
            "pairing": model.pairing,
            "directions": {name: {"source_shape": list(d.source_shape), "target_shape": list(d.target_shape),
                                  "stochastic": bool(d.stochastic), "reverse": bool(d.reverse)}
                           for name, d in directions.items()},
            "default": names[0],
        },
        "signatures": signatures + ["metadata"],
        "max_images": MAX_IMAGES,
        "truncation_input": False,
    }


def validated_images(images_uint8, shape, value_range):
    """`images_uint8` scaled to `value_range`, after checks of rank, size, channels and count."""
    expected = ", ".join(str(d) for d in shape)
    rank_ok = tf.equal(tf.rank(images_uint8), 4)
    dims = tf.concat([tf.shape(images_uint8), tf.ones([4], tf.int32)], axis=0)[:4]

    def given_rank(condition):  # a wrong rank is reported alone, as itself
        return tf.logical_or(tf.logical_not(rank_ok), condition)

    checks = [
        tf.debugging.Assert(rank_ok, [f"images_uint8 must be a batch of images, rank 4 (batch, {expected}); received rank",
                                      tf.rank(images_uint8)]),
        tf.debugging.Assert(given_rank(tf.reduce_all(tf.equal(dims[1:3], list(shape[:2])))),
                            [f"images_uint8 must be {shape[0]}x{shape[1]} pixels; received", dims[1:3]]),
        tf.debugging.Assert(given_rank(tf.equal(dims[3], shape[2])),
                            [f"images_uint8 must have {shape[2]} channel(s); received", dims[3]]),
        tf.debugging.Assert(given_rank(tf.logical_and(dims[0] >= 1, dims[0] <= MAX_IMAGES)),
                            [f"images_uint8 must hold 1 to {MAX_IMAGES} images per request; received", dims[0]]),
    ]
    with tf.control_dependencies(checks):
        low, high = value_range
        images = tf.cast(images_uint8, tf.float32) / 255.0 * (high - low) + low
        return tf.ensure_shape(tf.reshape(images, [-1, *shape]), [None, *shape])


def _outputs(images, value_range):
    low, high = value_range
    unit = tf.clip_by_value((images - low) / (high - low), 0.0, 1.0)
    return {"images": images, "images_uint8": tf.cast(tf.round(unit * 255.0), tf.uint8)}


def _seeds(batch, seed):
    """int32 `[batch, 2]`: `[seed, first_index + i]` (as `translation.example_seeds`) from `seed`,
    an int64 scalar (first_index 0) or `[seed, first_index]`; INVALID_ARGUMENT for another shape."""
    shape_ok = tf.logical_or(tf.equal(tf.rank(seed), 0),
                             tf.logical_and(tf.equal(tf.rank(seed), 1), tf.equal(tf.size(seed), 2)))
    check = tf.debugging.Assert(shape_ok, ["seed must be an int64 scalar or [seed, first_index]; received shape",
                                           tf.shape(seed)])
    with tf.control_dependencies([check]):
        pair = tf.reshape(tf.concat([tf.reshape(seed, [-1]), tf.zeros([1], tf.int64)], axis=0)[:2], [2])
    first = tf.fill([batch], tf.cast(tf.math.floormod(pair[0], 2**31), tf.int32))
    offsets = tf.cast(tf.math.floormod(pair[1], 2**31), tf.int32) + tf.range(batch, dtype=tf.int32)
    return tf.stack([first, offsets], axis=1)


def _endpoints(direction, value_range):
    """The unseeded and seeded signature functions of one `Direction`."""

    def serve(images_uint8):
        images = validated_images(images_uint8, direction.source_shape, value_range)
        seeds = tf.random.uniform([tf.shape(images)[0], 2], maxval=2**31 - 1, dtype=tf.int32)
        return _outputs(direction.translate(images, seeds), value_range)

    def serve_seeded(images_uint8, seed):
        images = validated_images(images_uint8, direction.source_shape, value_range)
        return _outputs(direction.translate(images, _seeds(tf.shape(images)[0], seed)), value_range)

    return serve, serve_seeded


def build_export_archive(model, metadata):
    """A `keras.export.ExportArchive` with a signature (and a seeded one if stochastic) per direction."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    value_range = model.value_range
    meta_json = json.dumps(metadata, sort_keys=True)
    # Any rank, so that a wrong one gets its own message rather than a signature mismatch.
    images_spec = tf.TensorSpec(None, tf.uint8, name="images_uint8")
    seed_spec = tf.TensorSpec(None, tf.int64, name="seed")  # a scalar, or [seed, first_index]
    for index, (name, direction) in enumerate(model.directions().items()):
        serve, serve_seeded = _endpoints(direction, value_range)
        archive.add_endpoint(name, serve, input_signature=[images_spec])
        if index == 0:
            archive.add_endpoint("serving_default", serve, input_signature=[images_spec])
        if direction.stochastic:
            archive.add_endpoint(f"{name}_seeded", serve_seeded, input_signature=[images_spec, seed_spec])

    def metadata_tensors():
        return {
            "image_shape": tf.constant(metadata["image_shape"], tf.int32),
            "source_shape": tf.constant(metadata["source_shape"], tf.int32),
            "value_range": tf.constant(metadata["value_range"], tf.float32),
            "max_images": tf.constant(MAX_IMAGES, tf.int32),
            "metadata_json": tf.constant(meta_json),
        }

    archive.add_endpoint("metadata", metadata_tensors, input_signature=[])
    return archive


def warmup_inputs(model, batch_sizes=(1, 8)):
    """`[(signature_name, inputs)]` that run every signature once at each of `batch_sizes`."""
    requests = []
    for name, direction in model.directions().items():
        for batch_size in batch_sizes:
            images = np.zeros((batch_size, *direction.source_shape), np.uint8)
            requests.append((name, {"images_uint8": images}))
            if direction.stochastic:
                requests.append((f"{name}_seeded", {"images_uint8": images, "seed": np.int64(0)}))
    return requests
