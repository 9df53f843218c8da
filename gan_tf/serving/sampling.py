"""Draw images from a trained generator wherever it is: a SavedModel, a `.keras` file, a server.

Each function returns `uint8 [N, H, W, C]` images (the `images_uint8` output of the exported
signatures), so a caller need not know the model's value range.
"""

import json
import os

import numpy as np

from gan_tf.data.captions import as_embeddings
from gan_tf.serving import client
from gan_tf.serving.export import MAX_SAMPLES, METADATA_FILE, existing_versions


def _labels_for(num_samples, labels, num_classes):
    if labels is None:
        return np.arange(num_samples, dtype=np.int32) % num_classes
    labels = np.asarray(labels, np.int32).reshape(-1)
    return np.resize(labels, num_samples) if labels.size else labels


def in_requests(count, max_rows, request):
    """`request(start, size, index)` for consecutive chunks of at most `max_rows` of `count` rows
    (an export caps the rows of one request), concatenated along the first axis. With a seed,
    callers give chunk `index` the seed `seed + index`: a PixelCNN's Keras `sample` draws its
    chunks the same way, and one request (`count <= max_rows`) is exactly the signature's answer."""
    max_rows = max(1, int(max_rows))
    parts = [request(start, min(max_rows, count - start), index)
             for index, start in enumerate(range(0, count, max_rows))]
    if not parts:
        return request(0, 0, 0)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _chunk_seed(seed, index):
    return None if seed is None else seed + index


def _to_uint8(images, value_range):
    low, high = value_range
    unit = np.clip((np.asarray(images, np.float32) - low) / (high - low), 0.0, 1.0)
    return np.round(unit * 255.0).astype(np.uint8)


def read_metadata(saved_model_dir):
    """The `gan_tf_metadata.json` an export carries (latent size, image shape, classes, ...)."""
    path = os.path.join(saved_model_dir, METADATA_FILE)
    if not os.path.exists(path):
        raise ValueError(f"{saved_model_dir} is not a gan_tf export: {METADATA_FILE} is missing")
    with open(path) as f:
        return json.load(f)


def newest_version(model_path):
    """The SavedModel version directory `model_path` names: itself, or for an export's base path
    (`saved_models/dcgan`, the path TF Serving is given) its highest version, as a server would
    load. Other paths (a `.keras` file, a missing path) come back unchanged."""
    if not os.path.isdir(model_path) or os.path.exists(os.path.join(model_path, METADATA_FILE)):
        return model_path
    versions = existing_versions(model_path)
    return os.path.join(model_path, str(versions[-1])) if versions else model_path


def describe_model(model_path):
    """`{"conditional", "num_classes", "image_shape", "translation", "melody", "captions"}` of a SavedModel
    export or a `.keras` model (from the model's `export_metadata`, the contract's description of
    what it makes; `translation` is None, or for image-to-image models their directions and input
    shape; `melody` None, or for melody models their bar layout and chord names; `captions`
    whether it draws images from caption strings; `embeddings` None, or the size of the
    precomputed text embeddings it draws images from)."""
    if not os.path.exists(model_path):
        raise FileNotFoundError(f"No model at {model_path}")
    if model_path.endswith(".keras"):
        import keras

        metadata = keras.saving.load_model(model_path, safe_mode=True).export_metadata()
    else:
        metadata = read_metadata(model_path)
    return {
        "conditional": bool(metadata.get("conditional")),
        "num_classes": metadata.get("num_classes"),
        "image_shape": metadata["image_shape"],
        "translation": metadata.get("translation"),
        "melody": metadata.get("melody"),
        "captions": metadata.get("conditions") == "captions",
        "embeddings": metadata.get("embedding_dim") if metadata.get("conditions") == "embeddings" else None,
    }


def caption_local(model_path, captions, seed=None):
    """uint8 images `[N, H, W, C]` of a text-to-image model (StackGAN) for caption strings (or,
    for a model trained on precomputed text embeddings, float `[N, D]` embeddings): a SavedModel
    export's `serving_default`, or a `.keras` file.

    Raises:
        ValueError: for a model that does not take captions (embeddings), or bad input (the
            signature's own message).
    """
    description = describe_model(model_path)
    if description["embeddings"]:
        captions = as_embeddings(captions, description["embeddings"], what=model_path)
    elif not description["captions"]:
        raise ValueError(f"{model_path} does not take captions")
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))
    if model_path.endswith(".keras"):
        import keras

        model = keras.saving.load_model(model_path, safe_mode=True)
        return _to_uint8(model.generate(captions if description["embeddings"] else list(captions), seed=seed),
                         model.value_range)

    import tensorflow as tf

    signature = tf.saved_model.load(model_path).signatures["serving_default"]
    if not description["embeddings"]:
        captions = list(captions)

    def request(start, size, index):
        part = captions[start : start + size]
        text = ({"embeddings": tf.constant(part)} if description["embeddings"]
                else {"captions": tf.constant(part, tf.string)})
        try:
            return signature(**text, seed=tf.constant(seed + index, tf.int64))["images_uint8"].numpy()
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(client.signature_error_message(error.message)) from None

    return in_requests(len(captions), read_metadata(model_path).get("max_samples", MAX_SAMPLES), request)


def compose_local(model_path, chords, seed=None, priming_bar=None):
    """Songs from a melody model (a SavedModel export's `compose` / `compose_primed`, or a
    `.keras` file): 0/1 bars `float32 [songs, bars, 16, 24, 2]` over int `chords` `[songs, bars]`.

    Raises:
        ValueError: for a model that does not write melodies, or bad chords (the signature's
            own message).
    """
    description = describe_model(model_path)
    if not description["melody"]:
        raise ValueError(f"{model_path} does not write melodies (it makes images)")
    chords = np.asarray(chords, np.int32)
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))
    if model_path.endswith(".keras"):
        import keras

        model = keras.saving.load_model(model_path, safe_mode=True)
        return model.compose(chords, seed=seed, primers=priming_bar)

    import tensorflow as tf

    signatures = tf.saved_model.load(model_path).signatures
    if priming_bar is not None:
        priming_bar = np.asarray(priming_bar, np.float32)

    def request(start, size, index):
        inputs = {"chords": tf.constant(chords[start : start + size]), "seed": tf.constant(seed + index, tf.int64)}
        name = "compose"
        if priming_bar is not None:
            # One priming bar for every song, or one per song (sliced with its songs).
            primer = priming_bar[start : start + size] if priming_bar.ndim == 4 and len(priming_bar) == len(chords) else priming_bar
            name, inputs["priming_bar"] = "compose_primed", tf.constant(primer)
        try:
            return signatures[name](**inputs)["piano_rolls"].numpy()
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(client.signature_error_message(error.message)) from None

    if chords.ndim != 2:  # the signature names the expected shape
        return request(0, len(chords), 0)
    return in_requests(len(chords), description["melody"].get("max_songs", 64), request)


def translate_local(model_path, images, seed=None, direction=None, batch_size=64):
    """Translates uint8 `images` with an image-to-image model: a SavedModel export (its
    `<direction>` signature, `<direction>_seeded` with a seed) or a `.keras` file.

    Args:
        model_path: an export version directory or a `.keras` file of a translation model.
        images: `uint8 [N, H, W, C]` in the direction's input shape.
        seed: int for reproducible noise (stochastic models), None: random.
        direction: which mapping (default: the model's first, e.g. Pix2Pix's `translate`,
            CycleGAN's `a_to_b`).

    Returns:
        `uint8 [N, H', W', C']`.

    Raises:
        ValueError: for a model that does not translate images, an unknown direction, or
            images of the wrong shape (the signature's own message).
    """
    description = describe_model(model_path)
    translation = description["translation"]
    if not translation:
        raise ValueError(f"{model_path} does not translate images (it samples them: use --num_samples)")
    direction = direction or translation["default"]
    if direction not in translation["directions"]:
        raise ValueError(f"{model_path} translates {', '.join(translation['directions'])}. Received: {direction!r}")
    images = np.asarray(images, np.uint8)
    expected = tuple(translation["directions"][direction]["source_shape"])
    if images.ndim != 4 or images.shape[1:] != expected:
        raise ValueError(f"{model_path} ({direction}) takes images of shape {expected}. Received: {images.shape[1:]}")
    if model_path.endswith(".keras"):
        import keras

        model = keras.saving.load_model(model_path, safe_mode=True)
        outputs = model.translate(model.scaled(images), seed=seed, direction=direction, batch_size=batch_size)
        return _to_uint8(outputs, model.value_range)

    import tensorflow as tf

    signatures = tf.saved_model.load(model_path).signatures
    stochastic = translation["directions"][direction]["stochastic"]
    results = []
    for start in range(0, len(images), batch_size):
        inputs = {"images_uint8": tf.constant(images[start : start + batch_size])}
        name = direction
        if stochastic and seed is not None:
            # Example i of the whole call keeps the seed [seed, i], as in Keras: each chunk says where it starts.
            name, inputs["seed"] = f"{direction}_seeded", tf.constant([seed, start], tf.int64)
        try:
            results.append(signatures[name](**inputs)["images_uint8"].numpy())
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(client.signature_error_message(error.message)) from None
    return np.concatenate(results)


def sample_local(model_path, num_samples, labels=None, seed=None, truncation=None):
    """Samples from a SavedModel directory (a gan_tf export) or a `.keras` model file.

    Args:
        model_path: an export version directory, or a `.keras` file saved by gan_tf.
        num_samples: how many images.
        labels: conditional models only: one label for all, or one per sample (cycled to
            `num_samples`); default: classes 0, 1, 2, ... in turn.
        seed: int for reproducible noise (None: random).
        truncation: None (or 0): untruncated; a positive threshold: Gaussian noise truncated to
            `[-truncation, truncation]` (the truncation trick). Exports take it only if their
            metadata says `truncation_input` (BigGAN); `.keras` files of any Gaussian-noise GAN.

    Returns:
        `uint8 [num_samples, H, W, C]`. An export caps the images of one request (its metadata's
        `max_samples`: 1,024 for GANs, 64 for a PixelCNN); more are asked for in several
        requests, the k-th seeded with `seed + k`.
    """
    if not os.path.exists(model_path):
        raise FileNotFoundError(f"No model at {model_path}")
    truncation = truncation or None
    if model_path.endswith(".keras"):
        import keras

        model = keras.saving.load_model(model_path, safe_mode=True)
        conditions = None if labels is None else {"labels": labels}
        options = {} if truncation is None else {"truncation": truncation}
        images = model.sample(num_samples, seed=seed, conditions=conditions, **options).images
        return _to_uint8(images, model.value_range)

    import tensorflow as tf

    metadata = read_metadata(model_path)
    if truncation is not None and not metadata.get("truncation_input"):
        raise ValueError(f"this {metadata['model']} export takes no truncation (BigGAN exports do)")
    if metadata.get("truncation_input") and truncation is None:
        truncation = 0.0  # untruncated
    if labels is not None and not metadata["conditional"]:
        raise ValueError("labels were given, but this model is not conditional")
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0. Received: {num_samples}")
    all_labels = _labels_for(num_samples, labels, metadata["num_classes"]) if metadata["conditional"] else None
    signatures = tf.saved_model.load(model_path).signatures

    def request(start, size, index):
        part_labels = None if all_labels is None else all_labels[start : start + size]
        signature_name, inputs = client.sample_inputs(size, part_labels, _chunk_seed(seed, index), truncation)
        try:
            outputs = signatures[signature_name](**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(client.signature_error_message(error.message)) from None
        return outputs["images_uint8"].numpy()

    # Above the export's cap per request (`max_samples`), chunk k is drawn with seed + k.
    return in_requests(num_samples, metadata.get("max_samples", MAX_SAMPLES), request)


def sample_remote(server, model_name, num_samples, labels=None, seed=None, protocol="grpc", truncation=None):
    """Samples through TF Serving (`protocol` "grpc", port 8500, or "rest", port 8501).

    Conditional models need `labels` (one label for all, or one per sample); BigGAN exports
    need `truncation` (0 for untruncated noise).
    """
    signature_name, inputs = client.sample_inputs(num_samples, labels, seed, truncation)
    if protocol == "grpc":
        outputs = client.predict_grpc(server, model_name, inputs, signature_name)
    elif protocol == "rest":
        outputs = client.predict_rest(server, model_name, inputs, signature_name, form="inputs")
    else:
        raise ValueError(f"protocol must be 'grpc' or 'rest'. Received: {protocol!r}")
    return outputs["images_uint8"]


def log_likelihood_local(model_path, images, labels=None, seed=0):
    """Per-image log-likelihoods of uint8 `images` under a SavedModel export or a `.keras` model:
    the model's `log_likelihood` (its contract method, or its export's signature of that name,
    asked in requests of at most its `max_images`), or None when the model defines none.

    Returns:
        None, or `{"log_likelihood": nats [N], "bits_per_dim": [N], ...}` (a VAE adds `elbo`).
    """
    if not os.path.exists(model_path):
        raise FileNotFoundError(f"No model at {model_path}")
    images = np.asarray(images, np.uint8)
    if model_path.endswith(".keras"):
        import keras

        model = keras.saving.load_model(model_path, safe_mode=True)
        return model.log_likelihood(images, None if labels is None else {"labels": labels}, seed=seed)

    import tensorflow as tf

    metadata = read_metadata(model_path)
    signatures = tf.saved_model.load(model_path).signatures
    if "log_likelihood" not in signatures:
        return None
    if metadata.get("conditional"):
        labels = _labels_for(len(images), labels, metadata["num_classes"])
    step = int((metadata.get("likelihood") or {}).get("max_images", 64))
    results = {}
    for start in range(0, len(images), step):
        inputs = {"images_uint8": tf.constant(images[start : start + step]), "seed": tf.constant(seed + start, tf.int64)}
        if metadata.get("conditional"):
            inputs["labels"] = tf.constant(labels[start : start + step])
        try:
            outputs = signatures["log_likelihood"](**inputs)
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(client.signature_error_message(error.message)) from None
        for key, value in outputs.items():
            results.setdefault(key, []).append(value.numpy())
    return {key: np.concatenate(values) for key, values in results.items()}
