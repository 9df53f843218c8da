"""Noise for generators: the distributions, stateless draws for exports, per-replica slices.

Kept apart from the models so that every model family (and the export signatures) draws noise
the same way.
"""

import tensorflow as tf

NOISE_DISTRIBUTIONS = ("gaussian", "uniform")


def stateless_noise(distribution, shape, seed, truncation=None):
    """Noise from a `[2]` int seed tensor: N(0, 1) for "gaussian", U[-1, 1] for "uniform".

    With `seed = [s, 0]` this draws exactly what `keras.random.normal(shape, seed=s)` (or
    `uniform`) draws, which is what `GAN.generate(..., seed=s)` uses; exported signatures use
    it so that a seeded request reproduces the Keras model's samples.

    `truncation` (Gaussian noise only): a scalar; where it is positive, values are drawn from
    N(0, 1) truncated to `[-truncation, truncation]` (BigGAN's truncation trick); where it is
    0 or negative, from the untruncated N(0, 1). A tensor is accepted, so one exported graph
    serves both.
    """
    if distribution == "uniform":
        return tf.random.stateless_uniform(shape, seed=seed, minval=-1.0, maxval=1.0)
    if truncation is None:
        return tf.random.stateless_normal(shape, seed=seed)
    truncation = tf.cast(truncation, tf.float32)

    def truncated():
        return tf.random.stateless_parameterized_truncated_normal(
            shape, seed=seed, means=0.0, stddevs=1.0, minvals=-truncation, maxvals=truncation
        )

    return tf.cond(truncation > 0, truncated, lambda: tf.random.stateless_normal(shape, seed=seed))


def replica_slice(draw, batch_size):
    """This replica's `batch_size` rows of `draw(global_batch_size)`.

    Every replica draws the whole global batch's random values from the same seed and keeps its
    own rows: replicas get different values, and N replicas together see exactly what one
    device would. Outside `tf.distribute` it is `draw(batch_size)`.
    """
    context = tf.distribute.get_replica_context()
    num_replicas = context.num_replicas_in_sync if context is not None else 1
    replica_id = context.replica_id_in_sync_group if context is not None else 0
    return draw(batch_size * num_replicas)[replica_id * batch_size : (replica_id + 1) * batch_size]
