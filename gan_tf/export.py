"""Export a trained generator as a versioned SavedModel, the layout TensorFlow Serving loads.

`<export_base>/<version>/saved_model.pb` + `variables/`, with integer versions: each export takes
the next free number and never overwrites one. The SavedModel is written to a temporary
directory beside the versions and renamed into place, so a crash never leaves a half-written
version for a server to load.
"""

import os
import re
import shutil
import tempfile

import keras
import tensorflow as tf

_VERSION = re.compile(r"^[0-9]+$")


def existing_versions(export_base):
    """The integer version directories under `export_base`, sorted."""
    if not os.path.isdir(export_base):
        return []
    return sorted(int(name) for name in os.listdir(export_base) if _VERSION.match(name))


def _serving_outputs(images, value_range):
    low, high = value_range
    unit = tf.clip_by_value((images - low) / (high - low), 0.0, 1.0)
    return {"images": images, "images_uint8": tf.cast(tf.round(unit * 255.0), tf.uint8)}


def build_export_archive(gan):
    """A `keras.export.ExportArchive` of `gan`'s generator in inference mode.

    Signature `serving_default`: `z` `float32 [None, latent_dim]` (and `labels` `int32 [None]`
    for conditional models) -> `images` (float, in the training value range) and
    `images_uint8` ([0, 255]).
    """
    archive = keras.export.ExportArchive()
    archive.track(gan.generator)
    noise_spec = tf.TensorSpec([None, gan.latent_dim], tf.float32, name="z")
    if getattr(gan, "conditional", False):
        label_spec = tf.TensorSpec([None], tf.int32, name="labels")

        def serve(z, labels):
            return _serving_outputs(gan.generator([z, labels], training=False), gan.value_range)

        archive.add_endpoint("serving_default", serve, input_signature=[noise_spec, label_spec])
    else:

        def serve(z):
            return _serving_outputs(gan.generator(z, training=False), gan.value_range)

        archive.add_endpoint("serving_default", serve, input_signature=[noise_spec])
    return archive


def export_generator(gan, export_base):
    """Exports `gan`'s generator to `<export_base>/<next free version>/`.

    Args:
        gan: a `gan_tf.GAN`.
        export_base: the model's base path (TF Serving's `--model_base_path`).

    Returns:
        The path of the new version directory.
    """
    os.makedirs(export_base, exist_ok=True)
    archive = build_export_archive(gan)
    temporary = tempfile.mkdtemp(prefix=".tmp-export-", dir=export_base)
    try:
        saved_model_dir = os.path.join(temporary, "saved_model")
        archive.write_out(saved_model_dir, verbose=False)
        while True:
            versions = existing_versions(export_base)
            target = os.path.join(export_base, str(versions[-1] + 1 if versions else 1))
            try:
                # A rename onto an existing (non-empty) version fails rather than replacing it.
                os.rename(saved_model_dir, target)
                return target
            except OSError:
                if not os.path.exists(target):
                    raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
