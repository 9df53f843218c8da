import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from gan_tf.distribute import split_cpu

# Two logical CPU devices for the MirroredStrategy tests; must happen before TensorFlow
# initialises its devices, so here, before any test runs an op.
split_cpu(2)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
