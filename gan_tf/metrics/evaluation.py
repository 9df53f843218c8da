"""Judge generated samples against real data, on features that need no downloaded weights.

The features come from the data's own classifier (`gan_tf.data.classifiers`): FID, KID,
precision/recall and sharpness on its penultimate layer, the classifier score, mode coverage
and, for conditional models, label accuracy from its softmax. Users who have Keras's ImageNet
weights for Inception-v3 can use its features instead (`load_inception`), as the FID/IS
literature does; then mode coverage and label accuracy, which need the dataset's own classes,
are not reported. Unlabelled data have no classes to train a classifier on: they use
Inception-v3 when its weights are given, otherwise the features of a fixed, seeded, randomly
initialised CNN (`RandomFeatures`; random embeddings are usable for precision and recall, Naeem
et al. 2020, https://arxiv.org/abs/2002.09797). Every report names the features it used
(`report["classifier"]["features"]`: "classifier", "inception_v3" or "random_cnn"), and so do
the TensorBoard tags and `evaluate.py`'s table.

`make_evaluator(source, ...)` gives the judge of any data by their modality: the image
`Evaluator` here, or the melody metrics (`gan_tf.metrics.melody_metrics`).
"""

import os

import keras
import numpy as np
import tensorflow as tf

from gan_tf.data import builtin
from gan_tf.data.classifiers import data_classifier
from gan_tf.data.pipeline import array_batches
from gan_tf.data.source import DataSource
from gan_tf.data.specs import open_source
from gan_tf.metrics import image_metrics as metrics
from gan_tf.metrics.melody_metrics import MelodyEvaluator


def features_for(source, cache_dir=None, seed=0, inception_weights=None):
    """The embedding the quality metrics of `source` use: the built-in's classifier, a
    classifier trained on labelled data, Inception-v3 (when `inception_weights` is given) or
    `RandomFeatures`."""
    if inception_weights is not None:
        return load_inception(inception_weights)
    return data_classifier(source, cache_dir, seed) or RandomFeatures(source.info.image_shape, seed)


class InceptionUnavailableError(ValueError):
    """Inception-v3's ImageNet weights cannot be loaded (no file, no internet)."""


INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"


def load_inception(weights=None):
    """Inception-v3 (ImageNet) as an embedding: 2048 pool features and the 1000-class softmax.

    Args:
        weights: path of Keras's ImageNet weights file for `InceptionV3(include_top=True)`
            (`inception_v3_weights_tf_dim_ordering_tf_kernels.h5`); default: Keras's own
            (`~/.keras/models/`, downloaded if missing and reachable).

    Raises:
        InceptionUnavailableError: the weights cannot be had, with what to do about it.
    """
    if weights is not None and not os.path.exists(weights):
        raise InceptionUnavailableError(f"No Inception-v3 weights file at {weights}")
    try:
        model = keras.applications.InceptionV3(include_top=True, weights=weights or "imagenet")
    except Exception as error:  # a failed download, a wrong or damaged file
        raise InceptionUnavailableError(
            f"Inception-v3's ImageNet weights could not be loaded ({str(error)[:200]}). Without internet, "
            f"copy {INCEPTION_WEIGHTS_FILE} into ~/.keras/models/ or give its path; or use the default "
            "per-dataset classifier features."
        ) from None
    return InceptionEmbedding(model)


class InceptionEmbedding:
    """`embed(uint8 images)`: Inception-v3's pool features and ImageNet probabilities.

    Images are resized to 299x299 (bilinear), grey ones repeated to 3 channels, and scaled to
    [-1, 1] as Inception-v3 expects.
    """

    classifies_dataset = False  # ImageNet classes: no mode coverage or label accuracy
    name = "inception_v3"
    test_accuracy = None

    def __init__(self, model):
        self._embedding = keras.Model(
            model.input, {"features": model.get_layer("avg_pool").output, "probabilities": model.output}
        )

    def _prepare(self, images):
        x = tf.image.resize(tf.cast(images, tf.float32), (299, 299))
        if x.shape[-1] == 1:
            x = tf.repeat(x, 3, axis=-1)
        return x / 127.5 - 1.0

    def embed(self, images):
        """`(features [N, 2048], probabilities [N, 1000])` of uint8 images `[N, H, W, C]`."""
        features, probabilities = [], []
        for start in range(0, len(images), 64):
            outputs = self._embedding(self._prepare(images[start : start + 64]), training=False)
            features.append(keras.ops.convert_to_numpy(outputs["features"]))
            probabilities.append(keras.ops.convert_to_numpy(outputs["probabilities"]))
        return np.concatenate(features), np.concatenate(probabilities)

    def features(self, images):
        return self.embed(images)[0]


class RandomFeatures:
    """`embed(uint8 images)`: the 256 features of a fixed, randomly initialised CNN (seed 0).

    For data without labels and without Inception weights. Conv(32, s2) -> Conv(64, s2) ->
    Conv(128, s2) -> Conv(256, s2), ReLU, then global average and max pooling concatenated
    (so any image size works); He-normal weights from a fixed seed, the same on every
    machine. Such features still separate realistic from unrealistic samples for FID and
    precision/recall (Naeem et al. 2020), but their values are not comparable with
    Inception-based ones; no class probabilities, so no classifier score or coverage.
    """

    classifies_dataset = False
    name = "random_cnn"
    test_accuracy = None

    def __init__(self, image_shape, seed=0):
        images = keras.Input(tuple(image_shape), name="images")
        x = images
        for index, filters in enumerate((32, 64, 128, 128)):
            initializer = keras.initializers.HeNormal(seed=seed + index)
            x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu",
                                    kernel_initializer=initializer)(x)
        pooled = [keras.layers.GlobalAveragePooling2D()(x), keras.layers.GlobalMaxPooling2D()(x)]
        self.model = keras.Model(images, keras.layers.Concatenate()(pooled), name="random_features")

    def embed(self, images):
        scaled = np.asarray(images, dtype=np.float32) / 127.5 - 1.0
        return self.model.predict(array_batches(scaled, 256), verbose=0), None

    def features(self, images):
        return self.embed(images)[0]


def _sample_metrics(classifier, images, real_features, real_probabilities_mix, num_classes, labels=None,
                    real_laplacian_energy=None):
    features, probabilities = classifier.embed(images)
    kid, kid_std = metrics.kernel_inception_distance(features, real_features, subset_size=min(1000, len(images)))
    precision, recall = metrics.precision_recall(real_features, features, k=3)
    result = {
        "fid": metrics.frechet_distance(features, real_features),
        "kid": kid,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
    }
    if real_laplacian_energy:  # mean Laplacian energy over that of the reference real images
        result["sharpness"] = float(metrics.laplacian_energy(images).mean() / real_laplacian_energy)
    # Where the images sit and how bright they are: augmentation leaking into samples moves them.
    lightness = metrics.brightness(images)
    result.update(centre_offset=float(metrics.centre_offset(images).mean()), brightness=float(lightness.mean()),
                  brightness_spread=float(lightness.std()),
                  border_brightness=float(metrics.border_brightness(images).mean()))
    if probabilities is not None:
        result["classifier_score"] = metrics.classifier_score(probabilities)
    if not classifier.classifies_dataset:
        return result
    predicted = probabilities.argmax(axis=1)
    coverage = metrics.mode_coverage(predicted, num_classes, real_distribution=real_probabilities_mix)
    result.update(
        classes_covered=coverage["classes_covered"],
        class_kl_to_real=coverage["kl_to_real"],
        class_histogram=coverage["histogram"],
    )
    if labels is not None:
        result["label_accuracy"] = metrics.label_accuracy(predicted, labels)
    return result


class Evaluator:
    """Scores generated images against a fixed draw of real images; the floor is computed once.

    Two disjoint halves of the real data are drawn (`seed`): the first is the reference every
    generated set is compared with, the second gives the floor (real vs real). Built once and
    called every few epochs by `gan_tf.training.monitoring.TensorBoardSamples`, or once by `evaluate.py`.

    Args:
        dataset: the dataset the generated images should look like: a built-in name or a
            `gan_tf.data.source.DataSource` (any data).
        num_samples: images per comparison (capped at half the real data).
        classifier: a `Classifier` (default: `features_for(source)`: the dataset's own
            classifier, or random CNN features for unlabelled data), an `InceptionEmbedding`
            from `load_inception`, or `RandomFeatures`.
        data_dir: where the dataset's files are, if not the defaults.
        seed: which real images are drawn for the two halves.
    """

    def __init__(self, dataset, num_samples, classifier=None, data_dir=None, seed=0):
        source = dataset if isinstance(dataset, DataSource) else open_source(dataset, data_dir=data_dir)
        self.dataset = source.spec
        self.info = source.info
        self.classifier = classifier or features_for(source)
        real_images, real_labels = source.arrays(max_examples=20_000, seed=seed)
        self.num_samples = int(min(num_samples, len(real_images) // 2))
        order = np.random.default_rng(seed).permutation(len(real_images))
        reference, floor = order[: self.num_samples], order[self.num_samples : 2 * self.num_samples]
        self.real_features = self.classifier.features(real_images[reference])
        self.real_laplacian_energy = float(metrics.laplacian_energy(real_images[reference]).mean())
        self.real_class_mix = np.bincount(real_labels, minlength=max(1, self.info.num_classes)) / len(real_labels)
        self._floor_images, self._floor_labels = real_images[floor], real_labels[floor]
        self._floors = {}

    def floor(self, with_labels=False):
        """The metrics of real images (the second half) against the reference half."""
        if with_labels not in self._floors:
            labels = self._floor_labels if with_labels else None
            self._floors[with_labels] = self._metrics(self._floor_images, labels)
        return self._floors[with_labels]

    def evaluate(self, images, labels=None):
        """Every metric for generated uint8 `images` (the first `num_samples`), next to the floor.

        Args:
            images: `uint8 [N, H, W, C]` generated samples, N >= 2.
            labels: for conditional models, the class each image was drawn for (gives label
                accuracy).

        Returns:
            `{"generated": {...}, "floor": {...}, "num_samples": n, "classifier": {...}}`.
        """
        images = np.asarray(images)
        if images.shape[1:] != self.info.image_shape:
            raise ValueError(
                f"The model makes images of shape {images.shape[1:]}, but {self.dataset} has "
                f"{self.info.image_shape}"
            )
        count = min(len(images), self.num_samples)
        labels = None if labels is None else np.asarray(labels)[:count]
        return {
            "num_samples": int(count),
            "generated": self._metrics(images[:count], labels),
            "floor": self.floor(with_labels=labels is not None),
            "classifier": {"features": self.classifier.name, "dataset": self.dataset,
                           "test_accuracy": self.classifier.test_accuracy},
        }

    def _metrics(self, images, labels):
        return _sample_metrics(self.classifier, images, self.real_features, self.real_class_mix,
                               self.info.num_classes, labels, self.real_laplacian_energy)


def evaluate_samples(images, dataset, labels=None, classifier=None, data_dir=None, seed=0):
    """Every metric for generated uint8 `images`, next to its floor (real half vs real half).

    A one-shot `Evaluator(dataset, len(images), ...).evaluate(images, labels)`.

    Args:
        images: `uint8 [N, H, W, C]` generated samples.
        dataset: the data they should look like: a built-in name or a `DataSource`.
        labels: for conditional models, the class each image was drawn for.
        classifier: an embedding (default: `features_for(source)`).
        data_dir: where a built-in dataset's files are, if not the defaults.
        seed: which real images are drawn for the two halves.

    Returns:
        `{"generated": {...}, "floor": {...}, "num_samples": N, "classifier": {...}}`.
    """
    images = np.asarray(images)
    if isinstance(dataset, str) and dataset in builtin.DATASETS:  # checked before anything is loaded
        info = builtin.dataset_info(dataset)
        if images.shape[1:] != info.image_shape:
            raise ValueError(f"The model makes images of shape {images.shape[1:]}, but {dataset} has {info.image_shape}")
    return Evaluator(dataset, len(images), classifier, data_dir, seed).evaluate(images, labels)


def baseline_images(inputs, shape):
    """uint8 `inputs` as a model that does nothing would output them at `shape` `(H, W, C)`: resized
    bicubically (the super-resolution baseline) and channels converted (grey tiled to RGB, RGB to
    luma)."""
    images = tf.constant(inputs, tf.float32)
    if tuple(images.shape[1:3]) != tuple(shape[:2]):
        images = tf.image.resize(images, shape[:2], method="bicubic")
    if images.shape[-1] != shape[-1]:
        images = tf.image.grayscale_to_rgb(images) if images.shape[-1] == 1 else tf.image.rgb_to_grayscale(images)
    return tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8).numpy()


def evaluate_translation(outputs, source, labels=None, targets=None, baseline=None, classifier=None, seed=0):
    """Every metric of an image-to-image model's `outputs` (uint8, translations of held-out inputs)
    against the target domain of `source`, next to the same numbers for `baseline` (uint8 images
    standing in for a model that does nothing: the inputs themselves, or their bicubic upsampling)
    and the real-data floor.

    Args:
        outputs: `uint8 [N, H, W, C]` translations.
        source: the `DataSource` whose target domain they should look like (`arrays()`).
        labels: the inputs' classes, when the data have them: `label_accuracy` is then label
            preservation (the classifier's label of the output equals the input's).
        targets: for paired data, `uint8` targets aligned with `outputs`: adds `l1`, `psnr`,
            `ssim` (`metrics.paired_metrics`).
        baseline: `uint8` images of the outputs' shape, or None.

    Returns:
        `{"generated": {...}, "baseline": {...} or None, "floor": {...}, "num_samples", "classifier"}`.
    """
    evaluator = Evaluator(source, len(outputs), classifier, seed=seed)
    report = evaluator.evaluate(outputs, labels)
    if targets is not None:
        report["generated"].update(metrics.paired_metrics(outputs[: report["num_samples"]], targets[: report["num_samples"]]))
    report["baseline"] = None
    if baseline is not None:
        report["baseline"] = evaluator.evaluate(baseline, labels)["generated"]
        if targets is not None:
            report["baseline"].update(metrics.paired_metrics(baseline[: report["num_samples"]], targets[: report["num_samples"]]))
    return report


def image_evaluator(source, num_samples, seed=0, inception_weights=None):
    """An `Evaluator` of image data on their own classifier's features (Inception-v3's with
    `inception_weights`)."""
    features = features_for(source, seed=seed, inception_weights=inception_weights)
    return Evaluator(source, num_samples, classifier=features, seed=seed)


def melody_evaluator(source, num_samples, seed=0, inception_weights=None):
    """The melody metrics' `MelodyEvaluator` (images' features do not apply to melodies)."""
    return MelodyEvaluator(source, num_samples, seed=seed)


# The judge of each modality of data (`DatasetInfo.modality`): a new modality adds one line.
EVALUATORS = {
    "images": image_evaluator,
    "captioned_images": image_evaluator,
    "melody": melody_evaluator,
}


def make_evaluator(source, num_samples, seed=0, inception_weights=None):
    """What scores a model's samples of `source` every few epochs and in evaluate.py: the
    evaluator of the data's modality, built once (its real-data floor is computed here).

    Raises:
        ValueError: for data of a modality no evaluator judges.
    """
    modality = source.info.modality
    if modality not in EVALUATORS:
        raise ValueError(f"No evaluator judges data of modality {modality!r} (known: {', '.join(EVALUATORS)}).")
    return EVALUATORS[modality](source, num_samples, seed=seed, inception_weights=inception_weights)
