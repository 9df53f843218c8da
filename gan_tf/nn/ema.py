"""An exponential moving average of a network's weights, for sampling from a smoothed generator.

Reference:
    Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training",
    https://arxiv.org/abs/1806.04498; Brock et al. 2018 (BigGAN samples from an EMA of G).
"""

import keras
from keras import ops


def warmed_up_decay(decay, step):
    """`min(decay, (1 + step) / (10 + step))`: a short memory early, so the average follows the
    fast-moving first weights instead of staying near the initialisation (as
    `tf.train.ExponentialMovingAverage` does with `num_updates`)."""
    step = ops.cast(step, "float32")
    return ops.minimum(ops.cast(decay, "float32"), (1.0 + step) / (10.0 + step))


def update_moving_average(average_variables, variables, decay):
    """`average <- decay * average + (1 - decay) * value` for each pair of variables.

    Non-float variables (e.g. counters) are copied. Both lists must align one to one (the
    weights of two networks of the same architecture, in the same order).
    """
    average_variables, variables = list(average_variables), list(variables)
    if len(average_variables) != len(variables):
        raise ValueError(f"Expected as many averages as variables. Received: {len(average_variables)} and {len(variables)}")
    for average, variable in zip(average_variables, variables):
        if average.shape != variable.shape:
            raise ValueError(f"Shapes differ: {average.path} {average.shape} vs {variable.path} {variable.shape}")
        value = variable.value
        if not keras.backend.is_float_dtype(average.dtype):
            average.assign(value)
            continue
        weight = ops.cast(decay, average.dtype)
        average.assign(weight * average.value + (1.0 - weight) * ops.cast(value, average.dtype))
