"""StackGAN's serving signatures: caption strings in, images out.

What `StackGAN.export_metadata`, `export_archive` and `warmup_requests` return (the model
contract); `gan_tf.serving.export` writes them out. The archive holds the text encoder with its
vocabulary (the `TextVectorization` layer is tracked with it), so clients send text:

* `serving_default`: `captions` tf.string `[N]`, `seed` int64 scalar -> `images` float32
  `[N, H, W, C]` in [-1, 1], `images_uint8`, and `stage1_images` float32 `[N, H/2, W/2, C]`. The
  same captions and seed give `StackGAN.generate(captions, seed=seed)`'s images.
* `sample`: `captions` -> the same outputs from fresh random noise.
* `metadata`: no inputs -> `image_shape`, `max_samples`, `metadata_json`.

A StackGAN trained on precomputed embeddings (`precomputed_embeddings=True`) takes `embeddings`
float32 `[N, embedding_dim]` in place of `captions` in both signatures (the metadata says
`"conditions": "embeddings"` and gives `embedding_dim`).

Bad input gets INVALID_ARGUMENT naming it: captions of a rank other than 1, more than
`MAX_SAMPLES` captions, an empty (or all-blank) caption; embeddings not of shape
`[N, embedding_dim]`, more than `MAX_SAMPLES` rows, NaN or infinite values.
"""

import json

import keras
import numpy as np
import tensorflow as tf

from gan_tf.serving.export import MAX_SAMPLES


def stackgan_metadata(model):
    """What a client needs to know about an exported StackGAN, as a JSON-able dict."""
    return {
        "model": type(model).__name__,
        "image_shape": list(model.image_shape),
        "stage1_shape": list(model.stage1_shape),
        "value_range": list(model.value_range),
        "conditional": True,
        "conditions": model.condition_key,
        "embedding_dim": model.embedding_dim,
        "vocabulary_size": 0 if model.precomputed_embeddings else len(model.vocabulary) + 2,
        "conditioning_augmentation": model.conditioning_augmentation,
        "signatures": ["serving_default", "sample", "metadata"],
        "truncation_input": False,
    }


def validated_captions(captions):
    """`captions` after checks of rank, count and content."""
    rank_ok = tf.equal(tf.rank(captions), 1)
    count = tf.size(captions)
    checks = [
        tf.debugging.Assert(rank_ok, ["captions must be a vector of strings [N]; received rank", tf.rank(captions)]),
        tf.debugging.Assert(count <= MAX_SAMPLES, [f"captions must hold at most {MAX_SAMPLES} strings per request"]),
        tf.debugging.Assert(tf.reduce_all(tf.strings.length(tf.strings.strip(tf.reshape(captions, [-1]))) > 0),
                            ["captions must be non-empty text"]),
    ]
    with tf.control_dependencies(checks):
        return tf.ensure_shape(tf.reshape(captions, [-1]), [None])


def validated_embeddings(embeddings, embedding_dim):
    """`embeddings` after checks of rank, size, count and values."""
    shape = tf.shape(embeddings)
    rank_ok = tf.equal(tf.rank(embeddings), 2)
    size_ok = tf.logical_and(rank_ok, tf.equal(shape[-1], embedding_dim))
    checks = [
        tf.debugging.Assert(size_ok, [f"embeddings must have shape [N, {embedding_dim}]; received", shape]),
        tf.debugging.Assert(shape[0] <= MAX_SAMPLES, [f"embeddings must hold at most {MAX_SAMPLES} rows per request"]),
        tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(embeddings)), ["embeddings must be finite"]),
    ]
    with tf.control_dependencies(checks):
        return tf.ensure_shape(tf.reshape(embeddings, [-1, embedding_dim]), [None, embedding_dim])


def _noise(count, model, seed_pair):
    keys = [tf.stack([seed_pair[0], tf.constant(part, tf.int64)]) for part in range(3)]
    return (tf.random.stateless_normal(tf.stack([count, model.latent_dim]), keys[0]),
            tf.random.stateless_normal(tf.stack([count, model.condition_dim]), keys[1]),
            tf.random.stateless_normal(tf.stack([count, model.condition_dim]), keys[2]))


def _outputs(model, captions, seed_pair):
    if model.precomputed_embeddings:
        captions = validated_embeddings(captions, model.embedding_dim)
    else:
        captions = validated_captions(captions)
    low, images = model.generate_images(model.embed(captions),
                                        *_noise(tf.shape(captions)[0], model, seed_pair))
    uint8 = tf.cast(tf.round(tf.clip_by_value((images + 1.0) / 2.0, 0.0, 1.0) * 255.0), tf.uint8)
    return {"images": images, "images_uint8": uint8, "stage1_images": low}


def build_export_archive(model, metadata):
    """A `keras.export.ExportArchive` with `serving_default`, `sample` and `metadata`."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    # Any rank: a wrong one gets its own message.
    captions_spec = (tf.TensorSpec(None, tf.float32, name="embeddings") if model.precomputed_embeddings
                     else tf.TensorSpec(None, tf.string, name="captions"))
    seed_spec = tf.TensorSpec([], tf.int64, name="seed")
    meta_json = json.dumps(metadata, sort_keys=True)

    def serve(text, seed):
        return _outputs(model, text, tf.stack([seed, tf.constant(0, tf.int64)]))

    def sample(text):
        return _outputs(model, text, tf.random.uniform([2], maxval=tf.int64.max, dtype=tf.int64))

    def metadata_tensors():
        return {"image_shape": tf.constant(model.image_shape, tf.int32), "max_samples": tf.constant(MAX_SAMPLES, tf.int32),
                "metadata_json": tf.constant(meta_json)}

    archive.add_endpoint("serving_default", serve, input_signature=[captions_spec, seed_spec])
    archive.add_endpoint("sample", sample, input_signature=[captions_spec])
    archive.add_endpoint("metadata", metadata_tensors, input_signature=[])
    return archive


def warmup_inputs(model, batch_sizes=(1, 8)):
    """`[(signature_name, inputs)]` running `serving_default` at each batch size, then `sample`."""
    if model.precomputed_embeddings:
        row = (np.asarray(model.examples.embeddings[:1], np.float32) if model.examples is not None
               else np.zeros((1, model.embedding_dim), np.float32))
        batch = lambda size: np.repeat(row, size, axis=0)  # noqa: E731
    else:
        caption = (model.examples.captions[0] if model.examples is not None else " ".join(model.vocabulary[:3])).encode()
        batch = lambda size: np.array([caption] * size, dtype=object)  # noqa: E731
    key = model.condition_key
    requests = [("serving_default", {key: batch(size), "seed": np.int64(0)}) for size in batch_sizes]
    requests.append(("sample", {key: batch(1)}))
    return requests
