"""Each labelled dataset's own classifier: a small CNN trained reproducibly on the data's images
and cached, so that gan_tf needs no downloaded weights to judge what a model makes.

The quality metrics (`gan_tf.metrics`) take their features and class probabilities from it, and
SRGAN its content loss (`DatasetInfo.classifier`). A built-in dataset at its native size has
one trained on its training split (`<cache_dir>/<dataset>-classifier-v1.keras`, its held-out
accuracy in a `.json` beside it; for `mnist_5k`, 400 digits per class, tested on the other 100);
any other labelled data (`folder:`, `tfds:`, a built-in at another size, image-to-image data)
one trained on (up to 20,000 of) their images, cached under a key of their content and image
size. The cache is `GAN_TF_CACHE`, or `~/.cache/gan_tf`. Its penultimate layer (128 units)
gives the features for FID, KID and precision/recall; its softmax the classifier score, mode
coverage and label accuracy. This is how TF-GAN evaluated MNIST GANs.
"""

import json
import os
import pathlib

import keras
import numpy as np

from gan_tf.data import builtin
from gan_tf.data.pipeline import array_batches, keras_array_batches
from gan_tf.data.source import default_cache_dir
from gan_tf.files import write_atomically

CLASSIFIER_VERSION = 1
_EPOCHS = {"mnist_5k": 20, "mnist": 3, "fashion_mnist": 8, "cifar10": 15}


# The classifier looks at images at most this many pixels on a side (larger ones are resized
# inside it), so that it trains in a minute or two on a CPU at any image size.
CLASSIFIER_MAX_SIDE = 32


def build_classifier(image_shape, num_classes):
    """[Resizing to at most 32 px a side] -> Conv(32) x2 -> pool -> Conv(64) x2 -> pool ->
    Dense(128, "features") -> Dense(classes) logits."""
    images = keras.Input(image_shape, name="images")
    x = images
    height, width = image_shape[:2]
    if max(height, width) > CLASSIFIER_MAX_SIDE:
        scale = CLASSIFIER_MAX_SIDE / max(height, width)
        x = keras.layers.Resizing(max(1, round(height * scale)), max(1, round(width * scale)),
                                  interpolation="bilinear", antialias=True, name="downscale")(x)
    for filters in (32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.3)(x)
    features = keras.layers.Dense(128, activation="relu", name="features")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(keras.layers.Dropout(0.3)(features))
    return keras.Model(images, logits, name="classifier")


def classifier_splits(dataset, data_dir=None, seed=0):
    """`(train_images, train_labels, test_images, test_labels)` for the dataset's classifier."""
    if dataset == "mnist_5k":
        images, labels = builtin.load_arrays("mnist_5k")
        rng = np.random.default_rng(seed)
        test = np.zeros(len(labels), dtype=bool)
        for digit in range(10):
            test[rng.choice(np.flatnonzero(labels == digit), 100, replace=False)] = True
        return images[~test], labels[~test], images[test], labels[test]
    train_images, train_labels = builtin.load_arrays(dataset, data_dir=data_dir, split="train")
    test_images, test_labels = builtin.load_arrays(dataset, data_dir=data_dir, split="test")
    return train_images, train_labels, test_images, test_labels


class Classifier:
    """A trained per-dataset classifier: `features` and `probabilities` of uint8 images."""

    classifies_dataset = True  # its classes are the dataset's: coverage and label accuracy apply
    name = "classifier"

    def __init__(self, model, dataset, test_accuracy):
        self.model = model
        self.dataset = dataset
        self.test_accuracy = test_accuracy
        # One model with both outputs: features and probabilities come from one pass.
        self._embedding = keras.Model(
            model.input, {"features": model.get_layer("features").output, "logits": model.output}
        )

    def embed(self, images):
        """`(features [N, 128], probabilities [N, num_classes])` of uint8 images `[N, H, W, C]`."""
        scaled = np.asarray(images, dtype=np.float32) / 255.0
        outputs = self._embedding.predict(array_batches(scaled, 256), verbose=0)
        probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(outputs["logits"]))
        return outputs["features"], probabilities

    def features(self, images):
        """`[N, 128]` penultimate activations of uint8 images."""
        return self.embed(images)[0]

    def probabilities(self, images):
        """`[N, num_classes]` class probabilities of uint8 images."""
        return self.embed(images)[1]


def fit_classifier(train_images, train_labels, test_images, test_labels, num_classes, epochs, seed=0):
    """`build_classifier` trained reproducibly on uint8 images (Adam 1e-3, batch 128, `epochs`)
    and tested; returns `(model, test accuracy)`. Every classifier here is trained by it."""
    keras.utils.set_random_seed(seed)
    model = build_classifier(train_images.shape[1:], num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    # The arrays go in through pipelines without autotuning (gan_tf.data.pipeline), the same
    # batches Keras would make of them.
    model.fit(keras_array_batches(train_images.astype(np.float32) / 255.0, train_labels, 128), epochs=epochs, verbose=0,
              shuffle=False)  # the batches are shuffled already
    test_batches = keras_array_batches(test_images.astype(np.float32) / 255.0, test_labels, 512, shuffle=False)
    _, accuracy = model.evaluate(test_batches, verbose=0)
    return model, float(accuracy)


def train_classifier(dataset, data_dir=None, seed=0, epochs=None):
    """Trains the dataset's classifier reproducibly; returns `(model, held-out accuracy)`."""
    info = builtin.dataset_info(dataset)
    train_images, train_labels, test_images, test_labels = classifier_splits(dataset, data_dir, seed)
    return fit_classifier(train_images, train_labels, test_images, test_labels, info.num_classes,
                          epochs or _EPOCHS[dataset], seed)


def _cache_stem(dataset, cache_dir):
    return os.path.join(cache_dir or default_cache_dir(), f"{dataset}-classifier-v{CLASSIFIER_VERSION}")


def save_classifier(model, dataset, test_accuracy, cache_dir=None, seed=0):
    """Caches a trained classifier (and its accuracy) where `load_classifier` finds it, atomically."""
    stem = _cache_stem(dataset, cache_dir)
    write_atomically(stem + ".keras", model.save)
    summary = json.dumps({"dataset": dataset, "test_accuracy": test_accuracy, "seed": seed})
    write_atomically(stem + ".json", lambda temporary: pathlib.Path(temporary).write_text(summary))


def load_classifier(dataset, data_dir=None, cache_dir=None, seed=0):
    """The dataset's classifier: from the cache, or trained now (a minute or more) and cached."""
    stem = _cache_stem(dataset, cache_dir)
    if os.path.exists(stem + ".keras") and os.path.exists(stem + ".json"):
        with open(stem + ".json") as f:
            accuracy = json.load(f)["test_accuracy"]
        return Classifier(keras.saving.load_model(stem + ".keras"), dataset, accuracy)
    print(f"Training the {dataset} classifier that the quality metrics use (once; cached in {stem}.keras).",
          flush=True)
    model, accuracy = train_classifier(dataset, data_dir, seed)
    save_classifier(model, dataset, accuracy, cache_dir, seed)
    return Classifier(model, dataset, accuracy)


# The most images of a dataset that its classifier trains and is tested on.
SOURCE_CLASSIFIER_EXAMPLES = 20_000
# Its training: at least this many updates (batch 128), in 10 to 100 epochs. Ten epochs alone
# were 150 updates on thin2bold_mnist's 1,800 bold digits: 95.3% held out, against 96.7% now (67 epochs).
SOURCE_CLASSIFIER_UPDATES = 1_000
SOURCE_CLASSIFIER_EPOCHS = (10, 100)
# Bumped when the source classifiers' training changes, so that cached ones are retrained.
SOURCE_CLASSIFIER_VERSION = 2


def source_classifier_epochs(num_train, batch_size=128):
    """Epochs for `num_train` images: enough for `SOURCE_CLASSIFIER_UPDATES` updates, within
    `SOURCE_CLASSIFIER_EPOCHS`."""
    steps = -(-int(num_train) // batch_size)
    low, high = SOURCE_CLASSIFIER_EPOCHS
    return int(np.clip(-(-SOURCE_CLASSIFIER_UPDATES // max(1, steps)), low, high))


def train_source_classifier(source, seed=0, epochs=None):
    """Trains a classifier on a labelled `DataSource`: 80% of (up to 20,000 of) its images
    (for `epochs`, default `source_classifier_epochs`), tested on the other 20%; returns
    `(model, held-out accuracy)`."""
    images, labels = source.arrays(max_examples=SOURCE_CLASSIFIER_EXAMPLES, seed=seed)
    order = np.random.default_rng(seed).permutation(len(images))
    test = order[: max(1, len(order) // 5)]
    train = order[len(test):]
    return fit_classifier(images[train], labels[train], images[test], labels[test], source.info.num_classes,
                          epochs or source_classifier_epochs(len(train)), seed)


def load_source_classifier(source, cache_dir=None, seed=0):
    """The classifier of a labelled `DataSource`, cached by the data's content key and image size."""
    key = f"source-v{SOURCE_CLASSIFIER_VERSION}-{source.content_key}"
    stem = _cache_stem(key, cache_dir)
    if os.path.exists(stem + ".keras") and os.path.exists(stem + ".json"):
        with open(stem + ".json") as f:
            accuracy = json.load(f)["test_accuracy"]
        return Classifier(keras.saving.load_model(stem + ".keras"), source.spec, accuracy)
    print(f"Training a classifier on {source.spec} for the quality metrics (once; cached in {stem}.keras).",
          flush=True)
    model, accuracy = train_source_classifier(source, seed)
    save_classifier(model, key, accuracy, cache_dir, seed)
    return Classifier(model, source.spec, accuracy)


def data_classifier(source, cache_dir=None, seed=0):
    """The classifier of a `DataSource`: its built-in's (or, with `judged_as`, that built-in's)
    at the native size, one trained on its own images when labelled, else None."""
    name = source.judged_as or source.spec
    native = builtin.DATASETS.get(name)
    if native is not None and tuple(native.image_shape) == tuple(source.info.image_shape):
        return load_classifier(name, cache_dir=cache_dir, seed=seed)
    if source.info.num_classes >= 2:
        return load_source_classifier(source, cache_dir, seed)
    return None
