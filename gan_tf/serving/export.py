"""Export a trained model as a versioned SavedModel that TensorFlow Serving serves as it is.

Layout (TF Serving's `--model_base_path` is `<export_base>`):

    <export_base>/<version>/saved_model.pb
                            variables/
                            assets.extra/tf_serving_warmup_requests   (PredictionLog records)
                            assets.extra/gan_tf_metadata.json

Versions are integers: each export takes the next free number and never overwrites one. The
SavedModel is written to a temporary directory beside the versions and renamed into place, so a
crash never leaves a half-written version for a server to load.

What is exported comes from the model, through the contract (`gan_tf.models.generative`): its
`export_archive` (the signatures), `export_metadata` and `warmup_requests`; this module adds
the class names, the request cap and the training config to the metadata, writes the warmup
records and the metadata file, and places the version. A GAN's signatures are described in
`gan_tf.serving.gan_signatures`.
"""

import json
import os
import shutil
import tempfile

import tensorflow as tf

# The most images one `sample` / `sample_seeded` request may ask for (a 28x28 float image is
# 3 KiB; 1024 of them are 3 MiB of response). Larger batches: several requests, or `z` batches.
MAX_SAMPLES = 1024
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
METADATA_FILE = os.path.join("assets.extra", "gan_tf_metadata.json")


def existing_versions(export_base):
    """The integer version directories under `export_base`, sorted."""
    if not os.path.isdir(export_base):
        return []
    return sorted(int(name) for name in os.listdir(export_base) if name.isdigit())


def export_metadata(model, class_names=None, training_config=None):
    """The model's `export_metadata()` with the class names, request cap and training config."""
    metadata = dict(model.export_metadata())
    num_classes = metadata.get("num_classes")
    if class_names is not None and num_classes is not None and len(class_names) != num_classes:
        raise ValueError(f"Expected {num_classes} class names. Received: {list(class_names)}")
    metadata.update(
        class_names=list(class_names) if class_names is not None and num_classes else [],
        max_samples=metadata.get("max_samples", MAX_SAMPLES),
        training_config=training_config or {},
    )
    return metadata


def warmup_records(model, model_name):
    """`PredictionLog` records that make TF Serving run the model's warmup requests on load."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    records = []
    for signature_name, inputs in model.warmup_requests():
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name)
        )
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        records.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    return records


def _write_extras(saved_model_dir, model, model_name, metadata):
    os.makedirs(os.path.join(saved_model_dir, "assets.extra"), exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(saved_model_dir, WARMUP_FILE)) as writer:
        for log in warmup_records(model, model_name):
            writer.write(log.SerializeToString())
    with open(os.path.join(saved_model_dir, METADATA_FILE), "w") as f:
        json.dump(metadata, f, indent=2, sort_keys=True)


def export_model(model, export_base, class_names=None, training_config=None):
    """Exports `model` to `<export_base>/<next free version>/` for TF Serving.

    Args:
        model: a `gan_tf.models.generative.GenerativeModel` (any gan_tf model).
        export_base: the model's base path; its last component is the model name that the
            warmup requests carry (TF Serving's `--model_name`).
        class_names: optional names of the classes, for class-conditional models.
        training_config: optional JSON-able dict recorded in the metadata.

    Returns:
        The path of the new version directory.

    Example:
        >>> path = export_model(gan, "saved_models/dcgan")  # saved_models/dcgan/1
        >>> serve = tf.saved_model.load(path).signatures["sample_seeded"]
        >>> serve(num_samples=tf.constant(4), seed=tf.constant(0, tf.int64))["images_uint8"]
    """
    os.makedirs(export_base, exist_ok=True)
    metadata = export_metadata(model, class_names, training_config)
    archive = model.export_archive(metadata)
    temporary = tempfile.mkdtemp(prefix=".tmp-export-", dir=export_base)
    try:
        saved_model_dir = os.path.join(temporary, "saved_model")
        archive.write_out(saved_model_dir, verbose=False)
        model_name = os.path.basename(os.path.normpath(os.path.abspath(export_base)))
        _write_extras(saved_model_dir, model, model_name, metadata)
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


# The name the GAN-only library had; every model exports the same way.
export_generator = export_model
