"""The in-memory training pipeline: uint8 arrays in, shuffled `(float32 images, int32 labels)`
batches out, fast and resumable at any batch (every in-memory source serves its data through it);
and `without_autotune`, which the pipelines gan_tf builds go through."""

import numpy as np
import tensorflow as tf
from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter


def without_autotune(dataset):
    """`dataset` with tf.data's autotuning off, so that dropping its iterator returns at once.

    With autotuning on, each iterator runs a model thread that sleeps for periods doubling from
    10 ms; a lost wake-up in TensorFlow 2.21's cancellation (the callbacks run before the manager
    is marked cancelled) can make the iterator's destructor wait for the thread's next period:
    a `fit` or `predict` call then returns 10 ms x (2^k - 1) after it began (1.27 s, 10.23 s,
    40.95 s, ...) with the cores idle (`bench/idle_tail.py` shows it and its absence here).
    The in-memory pipeline's rate is unchanged within its noise (the same bench).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def index_batches(num_examples, batch_size, seed=None, shuffle=True, repeat=False, start_batch=0):
    """Batches of example indices, `int32 [batch_size]`: `make_dataset`'s order (see there).

    Each pass is a stateless shuffle of `range(num_examples)` keyed by a key from
    `tf.data.Dataset.random(seed)`, cut into full batches; `start_batch=b` yields what the
    stream from 0 yields after its first `b` batches, at no cost.
    """
    num_batches = num_examples // batch_size

    def batches_of_indices(shuffle_key):
        order = tf.range(num_examples)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(order, seed=shuffle_key)
        return tf.data.Dataset.from_tensor_slices(tf.reshape(order[: num_batches * batch_size], [num_batches, batch_size]))

    first_pass, offset = divmod(int(start_batch), num_batches) if repeat else (0, int(start_batch))
    shuffle_keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    shuffle_keys = shuffle_keys.skip(first_pass) if repeat else shuffle_keys.take(1)
    return shuffle_keys.flat_map(batches_of_indices).skip(offset)


def make_dataset(images, labels, batch_size, value_range=(-1.0, 1.0), seed=None, shuffle=True, repeat=False,
                 start_batch=0):
    """Builds the training pipeline from in-memory arrays.

    The arrays stay in memory as uint8. Each pass over the data is a permutation of the example
    indices drawn by a stateless shuffle keyed by a seed from `tf.data.Dataset.random` (which
    draws a new key for every pass and the same sequence of keys for the same `seed`), cut
    into full batches (the remainder is dropped, so every step sees a static batch); each batch
    is gathered and scaled to `value_range` in one vectorised op, and prefetched. Shuffling whole
    index batches, not single examples, is what lets the pipeline deliver 300k-800k MNIST
    images/s on two cores (bench/throughput.py), far ahead of any model's training rate.

    Because every pass's order is a function of its key alone, a repeated stream can start at
    any batch: `start_batch=b` yields exactly what the stream from 0 yields after its first `b`
    batches (skipping keys and index batches only, so at no cost). That is how a resumed run
    continues with the data it would have seen.

    Args:
        images: `uint8 [N, H, W, C]`.
        labels: `int [N]`.
        batch_size: the global batch size.
        value_range: `(low, high)` the pixels 0..255 are mapped to.
        seed: the shuffle seed (None: a different order each run).
        shuffle: whether to shuffle.
        repeat: yield pass after pass (each in a new order) forever, from one iterator:
            unlike `.repeat()`, the pipeline is not restarted, cold, at each pass. Without it,
            one pass (a new order each time the dataset is iterated).
        start_batch: batches to leave out at the start of the stream (of the pass, without
            `repeat`).

    Returns:
        A `tf.data.Dataset` of `(float32 images, int32 labels)` batches.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1. Received: {batch_size}")
    if start_batch < 0:
        raise ValueError(f"start_batch must be at least 0. Received: {start_batch}")
    num_examples = len(images)
    if batch_size > num_examples:
        raise ValueError(
            f"batch_size {batch_size} is larger than the dataset ({num_examples} examples): "
            "with the remainder dropped no batch would be left"
        )
    low, high = value_range
    scale = (high - low) / 255.0
    images = tf.convert_to_tensor(images, dtype=tf.uint8)
    labels = tf.convert_to_tensor(np.asarray(labels, dtype=np.int32))

    def gather_batch(indices):
        image_batch = tf.cast(tf.gather(images, indices), tf.float32) * scale + low
        return image_batch, tf.gather(labels, indices)

    dataset = index_batches(num_examples, batch_size, seed=seed, shuffle=shuffle, repeat=repeat, start_batch=start_batch)
    dataset = dataset.map(gather_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return without_autotune(dataset.prefetch(tf.data.AUTOTUNE))


def array_batches(array, batch_size):
    """`array`'s rows in order, in batches of `batch_size` (the last one smaller): what `predict`
    is given instead of a numpy array, which Keras would wrap in an autotuned pipeline."""
    batches = tf.data.Dataset.from_tensor_slices(array).batch(batch_size)
    return without_autotune(batches.prefetch(tf.data.AUTOTUNE))


def keras_array_batches(inputs, targets, batch_size, shuffle=True):
    """The batches `Model.fit(inputs, targets, batch_size=batch_size, shuffle=shuffle)` trains
    on, without autotuning: Keras' own array adapter builds them (the same order and the same
    reshuffle at each epoch, so a model trained on them has the same weights), and `fit`, given
    this dataset and `epochs`, iterates it once per epoch as it would the arrays.

    Keras has no public way to build that pipeline, hence the one private import; a test
    trains on both and compares the weights, so a Keras that changes it fails there first.
    """
    adapter = ArrayDataAdapter(inputs, targets, batch_size=batch_size, shuffle=shuffle)
    return without_autotune(adapter.get_tf_dataset())
