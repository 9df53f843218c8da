"""Judge generated samples with our own per-dataset classifier (no Inception weights needed).

A small CNN per dataset is trained reproducibly on the dataset's training split and cached
(`<cache_dir>/<dataset>-classifier-v1.keras`, with its held-out accuracy in a `.json` beside
it); `GAN_TF_CACHE` or `~/.cache/gan_tf` by default. Its penultimate layer (128 units) gives the
features for FID, KID and precision/recall; its softmax gives the classifier score, mode
coverage and, for conditional models, label accuracy. This is how TF-GAN evaluated MNIST GANs.

For `mnist_5k` the classifier trains on 400 digits per class and is tested on the other 100
per class; other datasets use their own train/test splits.
"""

import json
import os
import tempfile

import keras
import numpy as np

from gan_tf import data as gan_data
from gan_tf import metrics

CLASSIFIER_VERSION = 1
_EPOCHS = {"mnist_5k": 20, "mnist": 3, "fashion_mnist": 8, "cifar10": 15}


def default_cache_dir():
    return os.environ.get("GAN_TF_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gan_tf")


def build_classifier(image_shape, num_classes):
    """Conv(32) -> pool -> Conv(64) -> pool -> Dense(128, "features") -> Dense(classes) logits."""
    images = keras.Input(image_shape, name="images")
    x = images
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
        images, labels = gan_data.load_arrays("mnist_5k")
        rng = np.random.default_rng(seed)
        test = np.zeros(len(labels), dtype=bool)
        for digit in range(10):
            test[rng.choice(np.flatnonzero(labels == digit), 100, replace=False)] = True
        return images[~test], labels[~test], images[test], labels[test]
    train_images, train_labels = gan_data.load_arrays(dataset, data_dir=data_dir, split="train")
    test_images, test_labels = gan_data.load_arrays(dataset, data_dir=data_dir, split="test")
    return train_images, train_labels, test_images, test_labels


class Classifier:
    """A trained per-dataset classifier: `features` and `probabilities` of uint8 images."""

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
        outputs = self._embedding.predict(scaled, batch_size=256, verbose=0)
        probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(outputs["logits"]))
        return outputs["features"], probabilities

    def features(self, images):
        """`[N, 128]` penultimate activations of uint8 images."""
        return self.embed(images)[0]

    def probabilities(self, images):
        """`[N, num_classes]` class probabilities of uint8 images."""
        return self.embed(images)[1]


def train_classifier(dataset, data_dir=None, seed=0, epochs=None):
    """Trains the dataset's classifier reproducibly; returns `(model, held-out accuracy)`."""
    info = gan_data.dataset_info(dataset)
    train_images, train_labels, test_images, test_labels = classifier_splits(dataset, data_dir, seed)
    keras.utils.set_random_seed(seed)
    model = build_classifier(info.image_shape, info.num_classes)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        train_images.astype(np.float32) / 255.0,
        train_labels,
        batch_size=128,
        epochs=epochs or _EPOCHS[dataset],
        verbose=0,
    )
    _, accuracy = model.evaluate(test_images.astype(np.float32) / 255.0, test_labels, batch_size=512, verbose=0)
    return model, float(accuracy)


def load_classifier(dataset, data_dir=None, cache_dir=None, seed=0):
    """The dataset's classifier: from the cache, or trained now and cached (atomically)."""
    cache_dir = cache_dir or default_cache_dir()
    stem = os.path.join(cache_dir, f"{dataset}-classifier-v{CLASSIFIER_VERSION}")
    if os.path.exists(stem + ".keras") and os.path.exists(stem + ".json"):
        with open(stem + ".json") as f:
            accuracy = json.load(f)["test_accuracy"]
        return Classifier(keras.saving.load_model(stem + ".keras"), dataset, accuracy)
    model, accuracy = train_classifier(dataset, data_dir, seed)
    os.makedirs(cache_dir, exist_ok=True)
    for suffix, write in ((".keras", model.save), (".json", None)):
        handle, temporary = tempfile.mkstemp(suffix=suffix, dir=cache_dir, prefix=".tmp-")
        os.close(handle)
        if write is not None:
            write(temporary)
        else:
            with open(temporary, "w") as f:
                json.dump({"dataset": dataset, "test_accuracy": accuracy, "seed": seed}, f)
        os.replace(temporary, stem + suffix)
    return Classifier(model, dataset, accuracy)


def _sample_metrics(classifier, images, real_features, real_probabilities_mix, num_classes, labels=None):
    features, probabilities = classifier.embed(images)
    predicted = probabilities.argmax(axis=1)
    kid, kid_std = metrics.kernel_inception_distance(features, real_features, subset_size=min(1000, len(images)))
    precision, recall = metrics.precision_recall(real_features, features, k=3)
    coverage = metrics.mode_coverage(predicted, num_classes, real_distribution=real_probabilities_mix)
    result = {
        "fid": metrics.frechet_distance(features, real_features),
        "kid": kid,
        "kid_std": kid_std,
        "classifier_score": metrics.classifier_score(probabilities),
        "precision": precision,
        "recall": recall,
        "classes_covered": coverage["classes_covered"],
        "class_kl_to_real": coverage["kl_to_real"],
        "class_histogram": coverage["histogram"],
    }
    if labels is not None:
        result["label_accuracy"] = metrics.label_accuracy(predicted, labels)
    return result


def evaluate_samples(images, dataset, labels=None, classifier=None, data_dir=None, seed=0):
    """Every metric for generated uint8 `images`, next to its floor (real half vs real half).

    Args:
        images: `uint8 [N, H, W, C]` generated samples.
        dataset: the dataset they should look like.
        labels: for conditional models, the class each image was drawn for.
        classifier: a `Classifier` (default: `load_classifier(dataset)`).
        data_dir: where the dataset's files are, if not the defaults.
        seed: which real images are drawn for the two halves.

    Returns:
        `{"generated": {...}, "floor": {...}, "num_samples": N, "classifier": {...}}`.
    """
    info = gan_data.dataset_info(dataset)
    images = np.asarray(images)
    if images.shape[1:] != info.image_shape:
        raise ValueError(
            f"The model makes images of shape {images.shape[1:]}, but {dataset} has {info.image_shape}"
        )
    classifier = classifier or load_classifier(dataset, data_dir)
    real_images, real_labels = gan_data.load_arrays(dataset, data_dir=data_dir)
    count = min(len(images), len(real_images) // 2)
    order = np.random.default_rng(seed).permutation(len(real_images))
    half_a, half_b = order[:count], order[count : 2 * count]
    real_features = classifier.features(real_images[half_a])
    real_mix = np.bincount(real_labels, minlength=info.num_classes) / len(real_labels)
    generated = _sample_metrics(classifier, images[:count], real_features, real_mix, info.num_classes,
                                None if labels is None else np.asarray(labels)[:count])
    floor = _sample_metrics(classifier, real_images[half_b], real_features, real_mix, info.num_classes,
                            None if labels is None else real_labels[half_b])
    return {
        "num_samples": int(count),
        "generated": generated,
        "floor": floor,
        "classifier": {"dataset": dataset, "test_accuracy": classifier.test_accuracy},
    }
