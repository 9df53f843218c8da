"""FLOP counts against hand-worked values (multiply-adds x 2, per example)."""

import keras
import pytest

from gan_tf import DCGAN, MLPGAN
from gan_tf.nn.profiling import (
    forward_flops_per_example,
    layer_flops_per_example,
    matmul_flops_per_second,
    trained_flops_per_image,
)


def test_dense_counts_inputs_times_units_times_two():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(4)(inputs))
    assert forward_flops_per_example(model) == 2 * 3 * 4


def test_dense_on_a_sequence_counts_every_position():
    inputs = keras.Input((5, 3))
    model = keras.Model(inputs, keras.layers.Dense(4)(inputs))
    assert forward_flops_per_example(model) == 5 * 2 * 3 * 4


def test_strided_conv_counts_output_pixels():
    inputs = keras.Input((8, 8, 2))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 3, strides=2, padding="same")(inputs))
    # 4 x 4 output pixels, each a 3 x 3 x 2 dot product for each of 3 filters.
    assert forward_flops_per_example(model) == 2 * (4 * 4) * (3 * 3 * 2) * 3


def test_transposed_conv_counts_input_pixels():
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, keras.layers.Conv2DTranspose(3, 5, strides=2, padding="same")(inputs))
    assert model.output_shape == (None, 8, 8, 3)
    assert forward_flops_per_example(model) == 2 * (4 * 4) * (5 * 5) * 2 * 3


def test_elementwise_layers_count_nothing_and_wrappers_and_nested_models_count_their_layers():
    inputs = keras.Input((6,))
    x = keras.layers.BatchNormalization()(inputs)
    x = keras.layers.LeakyReLU()(x)
    x = keras.layers.SpectralNormalization(keras.layers.Dense(2))(x)
    inner = keras.Model(inputs, x)
    outer_inputs = keras.Input((6,))
    outer = keras.Model(outer_inputs, keras.layers.Dense(1)(inner(outer_inputs)))
    assert layer_flops_per_example(outer.layers[1]) == 2 * 6 * 2
    assert forward_flops_per_example(outer) == 2 * 6 * 2 + 2 * 2 * 1


def test_mlp_gan_step_flops():
    gan = MLPGAN(seed=0)
    generator = 2 * (100 * 128 + 128 * 784)
    discriminator = 2 * (784 * 128 + 128 * 1)
    assert forward_flops_per_example(gan.generator) == generator
    assert forward_flops_per_example(gan.discriminator) == discriminator
    # D step: G fwd + D fwd/bwd on real and fake; G step: G fwd/bwd + D fwd + D input grads.
    assert trained_flops_per_image(gan) == 4 * generator + 8 * discriminator
    two_d_steps = MLPGAN(d_steps=2, seed=0)
    assert trained_flops_per_image(two_d_steps) == 2 * (generator + 6 * discriminator) + 3 * generator + 2 * discriminator
    # bCR: D forward and backward on the shifted real and fake images too.
    consistent = MLPGAN(seed=0, consistency_weight=10.0)
    assert trained_flops_per_image(consistent) == 4 * generator + 14 * discriminator


def test_dcgan_forward_flops_match_the_tutorial_network():
    gan = DCGAN(seed=0)
    generator = (
        2 * 100 * (7 * 7 * 256)  # Dense to 7x7x256
        + 2 * (7 * 7) * 25 * 256 * 128  # ConvT 5x5, stride 1
        + 2 * (7 * 7) * 25 * 128 * 64  # ConvT 5x5, stride 2: 7x7 -> 14x14
        + 2 * (14 * 14) * 25 * 64 * 1  # ConvT 5x5, stride 2: 14x14 -> 28x28
    )
    discriminator = 2 * (14 * 14) * 25 * 1 * 64 + 2 * (7 * 7) * 25 * 64 * 128 + 2 * (7 * 7 * 128)
    assert forward_flops_per_example(gan.generator) == generator == 103_488_000
    assert forward_flops_per_example(gan.discriminator) == discriminator


def test_matmul_rate_is_a_plausible_positive_figure():
    rate = matmul_flops_per_second(sizes=(128,), repeats=3, matmuls_per_call=2)
    assert 1e8 < rate < 1e14  # between a slow phone and a large accelerator
    with pytest.raises(ValueError, match="sizes"):
        matmul_flops_per_second(sizes=())
