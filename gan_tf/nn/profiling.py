"""Counting the arithmetic of a model's training step, and measuring what the machine can do.

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


def trained_flops_per_image(model):
    """FLOPs one train step of `model` spends per training image: the model's own count (the
    contract's `train_step_flops_per_image`; for a GAN, `GAN.train_step_flops_per_image`)."""
    return model.train_step_flops_per_image()


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
