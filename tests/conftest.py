import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from gan_tf.training.distribute import split_cpu

# Two logical CPU devices for the MirroredStrategy tests; must happen before TensorFlow
# initialises its devices, so here, before any test runs an op.
split_cpu(2)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _gans():
    from gan_tf import GAN, MODELS

    return {name: model_class for name, model_class in MODELS.items() if issubclass(model_class, GAN)}


# The registry's GANs (a generator and a discriminator): what the GAN-specific suites run over.
GANS = _gans()


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)


def tiny_batches(num_batches=2, batch_size=8, image_shape=(28, 28, 1), value_range=(-1.0, 1.0), seed=0):
    """Random (images, labels) batches in the model's value range, as a tf.data.Dataset."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    low, high = value_range
    count = num_batches * batch_size
    images = rng.uniform(low, high, size=(count,) + tuple(image_shape)).astype("float32")
    labels = rng.integers(0, 10, size=count).astype("int32")
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size, drop_remainder=True)


def striped_digits(num_classes=4, per_class=32, seed=0):
    """Class k is a bright band across rows 7k..7k+6: separable by where the band is."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), per_class).astype("int32")
    images = np.full((len(labels), 28, 28, 1), -1.0, "float32")
    for index, label in enumerate(labels):
        images[index, 7 * label : 7 * label + 7] = 1.0
    images += rng.normal(0, 0.1, images.shape).astype("float32")
    order = rng.permutation(len(labels))
    return tf.data.Dataset.from_tensor_slices((images[order], labels[order])).batch(16, drop_remainder=True)


def eight_bit_stripes():
    """`striped_digits` on the 256 levels of 8-bit data, as a pipeline yields them (for the
    likelihood models, whose likelihood is of 8-bit images)."""
    import tensorflow as tf

    return striped_digits().map(lambda images, labels: (
        tf.round((tf.clip_by_value(images, -1.0, 1.0) + 1.0) * 127.5) / 127.5 - 1.0, labels))


def assert_training_lowered_bits_per_dim(history, dimensions=784):
    """A likelihood model's `fit` history: its two trackers, bits/dim below 0.8x the first
    epoch's, and bits/dim the loss (nats per image) over `dimensions x ln 2`."""
    assert set(history) == {"loss", "bits_per_dim"}
    assert history["bits_per_dim"][-1] < 0.8 * history["bits_per_dim"][0], history["bits_per_dim"]
    np.testing.assert_allclose(history["bits_per_dim"][-1], history["loss"][-1] / (dimensions * np.log(2.0)), rtol=1e-5)
