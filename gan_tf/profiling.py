"""Counting the arithmetic of a GAN's training step, and measuring what the machine can do.

`bench/throughput.py` divides the FLOP/s a model trains at by `matmul_flops_per_second()` to
report model FLOP utilisation (MFU). FLOPs are counted analytically, as multiply-adds x 2, for
the layers that carry the arithmetic (Dense, convolutions, transposed convolutions, and any
layer that defines `flops_per_example()`); element-wise layers (batch norm, activations,
dropout) are left out, so MFU slightly understates the work done.
"""

import math
import time

import keras
import tensorflow as tf


def _shape(tensor):
    return tuple(tensor.shape)


def layer_flops_per_example(layer):
    """Forward FLOPs of one call of `layer` on one example (0 for element-wise layers)."""
    if hasattr(layer, "flops_per_example"):
        return layer.flops_per_example()
    if isinstance(layer, keras.Model):
        return forward_flops_per_example(layer)
    kernel_layer = layer
    while isinstance(getattr(kernel_layer, "layer", None), keras.layers.Layer):
        kernel_layer = kernel_layer.layer  # wrappers such as SpectralNormalization
    if not isinstance(kernel_layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.Dense)):
        return 0
    return _kernel_flops(kernel_layer, _shape(layer.input), _shape(layer.output))


def _kernel_flops(layer, input_shape, output_shape):
    if isinstance(layer, keras.layers.Conv2DTranspose):
        # Every input pixel is multiplied by the whole kernel.
        _, height, width, in_channels = input_shape
        kernel_height, kernel_width = layer.kernel_size
        return 2 * height * width * kernel_height * kernel_width * in_channels * layer.filters
    if isinstance(layer, keras.layers.Conv2D):
        _, height, width, _ = output_shape
        kernel_height, kernel_width = layer.kernel_size
        in_channels = input_shape[-1] // layer.groups
        return 2 * height * width * kernel_height * kernel_width * in_channels * layer.filters
    if isinstance(layer, keras.layers.Dense):
        positions = math.prod(input_shape[1:-1])
        return 2 * positions * input_shape[-1] * layer.units
    raise TypeError(f"No FLOP count for {type(layer).__name__}")


def forward_flops_per_example(model):
    """Forward FLOPs of `model` (a built functional or Sequential model) for one example."""
    return sum(layer_flops_per_example(layer) for layer in model.layers)


def trained_flops_per_image(gan):
    """FLOPs `GAN.train_step` spends per real image (forward and backward of both networks).

    With F_G and F_D the forward FLOPs of G and D per example, and a backward pass costing
    twice its forward pass (gradients for inputs and for weights), one step does, per image:

    * each of the `d_steps` D steps: G forward on fresh noise (F_G), D forward on a real and a
      fake image (2 F_D) and D backward on both (4 F_D);
    * the G step: G forward (F_G), D forward (F_D), D backward for its input only (F_D), G
      backward (2 F_G).

    So `d_steps * (F_G + 6 F_D) + 3 F_G + 2 F_D`. Models whose step does other work (a
    gradient penalty, an auxiliary classifier) say so with a `train_step_flops_per_image`
    method, which this function then returns.
    """
    if hasattr(gan, "train_step_flops_per_image"):
        return gan.train_step_flops_per_image()
    generator_flops = forward_flops_per_example(gan.generator)
    discriminator_flops = forward_flops_per_example(gan.discriminator)
    return gan.d_steps * (generator_flops + 6 * discriminator_flops) + 3 * generator_flops + 2 * discriminator_flops


def matmul_flops_per_second(sizes=(1024, 2048), repeats=5, matmuls_per_call=4):
    """The best float32 FLOP/s of square matrix products on this machine, as TensorFlow runs them.

    For each size n, a `tf.function` chains `matmuls_per_call` n x n products (2 n^3 FLOPs
    each); it is called once to warm up, then `repeats` times; the best size's median is
    returned. A reference figure: large convolutions can run faster than it.
    """
    if not sizes:
        raise ValueError("matmul_flops_per_second needs at least one matrix size in `sizes`.")
    best = 0.0
    for size in sizes:
        a = tf.random.normal([size, size], seed=1)
        b = tf.random.normal([size, size], seed=2) / size

        @tf.function
        def chain(x):
            for _ in range(matmuls_per_call):
                x = tf.matmul(x, b)
            return tf.reduce_sum(x[0, 0])  # a scalar: no copy of the result is timed

        chain(a).numpy()
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            chain(a).numpy()
            rates.append(matmuls_per_call * 2 * size**3 / (time.perf_counter() - start))
        rates.sort()
        best = max(best, rates[len(rates) // 2])
    return best
