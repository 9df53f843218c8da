"""The shared building blocks against numbers worked out by hand."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_tf.nn import ema
from gan_tf.nn import losses
from gan_tf.nn.layers import (ClassProjection, ConcatConditionPlanes, ConditionalBatchNormalization,
                              ConditionPlanesConv2D, SelfAttention2D, SpectralNormalization)


def _dense_sn(kernel, power_iterations=1):
    layer = SpectralNormalization(keras.layers.Dense(kernel.shape[1], use_bias=False), power_iterations)
    layer.build((None, kernel.shape[0]))
    layer.layer.kernel.assign(kernel)
    return layer


def test_spectral_norm_of_a_known_matrix_and_its_gradient():
    # W = diag(3, 1): sigma = 3, top singular vectors e1. y = x W / 3.
    layer = _dense_sn(np.diag([3.0, 1.0]).astype("float32"), power_iterations=20)
    x = tf.constant([[1.0, 1.0]])
    with tf.GradientTape() as tape:
        y = layer(x, training=True)
        total = tf.reduce_sum(y)
    np.testing.assert_allclose(y.numpy(), [[1.0, 1.0 / 3.0]], rtol=1e-6)
    # d/dW sum(x W / sigma) = x^T 1 / sigma - sum(x W) / sigma^2 * v u^T, with u = v = e1:
    # [[1/3 - 4/9, 1/3], [1/3, 1/3]]. The sigma term is what keras.layers.SpectralNormalization drops.
    (gradient,) = tape.gradient(total, layer.trainable_variables)
    np.testing.assert_allclose(gradient.numpy(), [[1 / 3 - 4 / 9, 1 / 3], [1 / 3, 1 / 3]], rtol=1e-5)
    np.testing.assert_array_equal(layer.layer.kernel.numpy(), np.diag([3.0, 1.0]))  # never overwritten


def test_power_iteration_finds_the_largest_singular_value_in_training_only():
    kernel = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    layer = _dense_sn(kernel)
    u_before = layer.vector_u.numpy().copy()
    layer(tf.ones((1, 6)), training=False)
    np.testing.assert_array_equal(layer.vector_u.numpy(), u_before)  # inference: u untouched
    for _ in range(30):
        layer(tf.ones((1, 6)), training=True)
    assert not np.allclose(layer.vector_u.numpy(), u_before)
    sigma, _ = layer.spectral_norm(training=False)
    np.testing.assert_allclose(float(sigma), np.linalg.svd(kernel, compute_uv=False)[0], rtol=1e-5)
    normalized = kernel / float(sigma)
    np.testing.assert_allclose(layer(tf.eye(6), training=False).numpy(), normalized, rtol=1e-5)


def test_spectral_norm_wraps_convolutions_and_embeddings_and_checks_its_argument():
    conv = SpectralNormalization(keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same"))
    assert conv(tf.ones((2, 5, 5, 2)), training=True).shape == (2, 10, 10, 3)
    embedding = SpectralNormalization(keras.layers.Embedding(4, 3))
    assert embedding(tf.constant([0, 3]), training=True).shape == (2, 3)
    with pytest.raises(ValueError, match="Received: power_iterations=0"):
        SpectralNormalization(keras.layers.Dense(2), power_iterations=0)


def _reference_attention(x, layer):
    """SAGAN's equations in numpy with the layer's (unnormalized) 1x1 kernels."""
    def conv(sub, inputs):
        return inputs @ sub.kernel.numpy()[0, 0]

    batch, height, width, _ = x.shape
    flat = x.reshape(batch, height * width, -1)
    query, key, value = conv(layer.query_conv, flat), conv(layer.key_conv, flat), conv(layer.value_conv, flat)
    scores = query @ key.transpose(0, 2, 1)
    beta = np.exp(scores - scores.max(-1, keepdims=True))
    beta /= beta.sum(-1, keepdims=True)
    output = conv(layer.output_conv, beta @ value).reshape(x.shape)
    return x + float(layer.gamma.numpy()) * output


def test_self_attention_is_the_identity_at_gamma_zero_and_follows_the_paper_otherwise():
    x = np.random.default_rng(1).normal(size=(2, 3, 4, 16)).astype("float32")
    layer = SelfAttention2D(channel_divisor=8, spectral_norm=False)
    np.testing.assert_array_equal(layer(x).numpy(), x)  # gamma starts at 0
    assert [v.shape for v in layer.query_conv.weights] == [(1, 1, 16, 2)]
    layer.gamma.assign(1.5)
    np.testing.assert_allclose(layer(x).numpy(), _reference_attention(x, layer), rtol=1e-4, atol=1e-5)


def test_self_attention_with_spectral_norm_round_trips_through_a_keras_file(tmp_path):
    model = keras.Sequential([keras.Input((4, 4, 16)), SelfAttention2D(name="attention")])
    model.get_layer("attention").gamma.assign(0.7)
    model(np.ones((1, 4, 4, 16), "float32"), training=True)  # updates every u
    path = str(tmp_path / "attention.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(2).normal(size=(2, 4, 4, 16)).astype("float32")
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    assert loaded.get_layer("attention").get_config()["channel_divisor"] == 8


def test_conditional_batch_norm_by_hand():
    layer = ConditionalBatchNormalization(epsilon=0.0)
    features = np.array([[1.0, 2.0], [3.0, 6.0]], "float32")  # per-channel mean (2, 4), std (1, 2)
    condition = np.array([[1.0, 0.0], [0.0, 2.0]], "float32")
    layer.build((features.shape, condition.shape))
    np.testing.assert_allclose(layer([features, condition], training=True).numpy(), [[-1, -1], [1, 1]], atol=1e-6)
    layer.gain.kernel.assign([[0.5, 0.0], [0.0, 1.0]])  # gains 1 + c W_g: [1.5, 1] and [1, 3]
    layer.bias.kernel.assign([[1.0, 1.0], [0.0, -1.0]])  # biases c W_b: [1, 1] and [0, -2]
    np.testing.assert_allclose(
        layer([features, condition], training=True).numpy(), [[-0.5, 0.0], [1.0, 1.0]], atol=1e-6
    )


def test_class_projection_is_the_inner_product_with_the_class_embedding():
    layer = ClassProjection(3, spectral_norm=False)
    layer.build(((None, 2), (None,)))
    layer.embedding.embeddings.assign([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    features = np.array([[3.0, 4.0], [3.0, 4.0], [3.0, 4.0]], "float32")
    scores = layer([features, np.array([0, 1, 2])]).numpy()
    np.testing.assert_allclose(scores, [[3.0], [8.0], [7.0]])
    normalized = ClassProjection(3, spectral_norm=True)
    normalized.build(((None, 2), (None,)))
    normalized.embedding.layer.embeddings.assign(np.diag([4.0, 2.0, 0.0])[:, :2])  # sigma = 4
    for _ in range(5):
        normalized([features, np.array([0, 1, 2])], training=True)
    np.testing.assert_allclose(normalized([features, np.array([0, 1, 2])]).numpy(), [[3.0], [2.0], [0.0]], rtol=1e-5)


def test_moving_average_update_and_warm_up_by_hand():
    average, value = keras.Variable([0.0, 10.0]), keras.Variable([1.0, 0.0])
    counter_average, counter = keras.Variable(0, dtype="int64"), keras.Variable(7, dtype="int64")
    ema.update_moving_average([average, counter_average], [value, counter], 0.9)
    np.testing.assert_allclose(average.numpy(), [0.1, 9.0], rtol=1e-6)
    assert int(counter_average.numpy()) == 7  # copied, not averaged
    assert float(ema.warmed_up_decay(0.999, 0)) == pytest.approx(0.1)
    assert float(ema.warmed_up_decay(0.999, 90)) == pytest.approx(0.91)
    assert float(ema.warmed_up_decay(0.999, 10**6)) == pytest.approx(0.999)
    with pytest.raises(ValueError, match="as many averages"):
        ema.update_moving_average([average], [value, counter], 0.9)


def test_orthogonal_regularization_by_hand():
    # W^T W = [[1, 1], [1, 2]]: off-diagonal entries 1 and 1.
    assert float(losses.orthogonal_regularization([np.array([[1.0, 1.0], [0.0, 1.0]], "float32")])) == 2.0
    rotation = np.array([[0.6, -0.8], [0.8, 0.6]], "float32")
    assert float(losses.orthogonal_regularization([3.0 * rotation])) == pytest.approx(0.0, abs=1e-4)
    # A wide kernel (fewer rows than columns) gives the same value by the smaller Gram matrix.
    wide = np.random.default_rng(0).normal(size=(2, 3, 7)).astype("float32")
    columns = wide.reshape(-1, 7)
    expected = np.sum(np.square((columns.T @ columns) * (1 - np.eye(7))))
    assert float(losses.orthogonal_regularization([wide])) == pytest.approx(expected, rel=1e-5)


def test_auxiliary_classifier_loss_by_hand():
    logits = np.array([[0.0, np.log(3.0)], [2.0, 2.0]], "float32")  # softmax [1/4, 3/4], [1/2, 1/2]
    np.testing.assert_allclose(
        losses.auxiliary_classifier_loss(logits, np.array([1, 0])).numpy(), [np.log(4 / 3), np.log(2.0)], rtol=1e-6
    )


@pytest.mark.parametrize("strides, padding", [(2, "same"), (1, "same"), (2, "valid")])
def test_condition_planes_conv2d_is_the_convolution_of_the_concatenated_planes(strides, padding):
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(-1, 1, (5, 9, 8, 2)), tf.float32)
    one_hot = tf.one_hot([0, 3, 1, 2, 3], 4)
    mixed = tf.constant(rng.uniform(0, 1, (5, 4)), tf.float32)  # any condition vector, not only one-hot
    layer = ConditionPlanesConv2D(6, 3, strides=strides, padding=padding)
    conv = keras.layers.Conv2D(6, 3, strides=strides, padding=padding)
    layer([images, one_hot])
    conv(tf.zeros((1, 9, 8, 6)))
    layer.bias.assign(rng.standard_normal(6))
    conv.set_weights(layer.get_weights())  # the same kernel [3, 3, 2 + 4, 6] and bias
    for condition in (one_hot, mixed):
        expected = conv(ConcatConditionPlanes()([images, condition]))
        outputs = layer([images, condition])
        assert outputs.shape == expected.shape == (5, *layer.compute_output_shape(((5, 9, 8, 2), (5, 4)))[1:])
        np.testing.assert_allclose(outputs, expected, atol=1e-5)
    # The label's planes reach the borders differently (zero padding): same-padded maps vary in space.
    if padding == "same":
        label_part = layer([tf.zeros_like(images), one_hot]) - layer.bias
        assert not np.allclose(label_part[0, 0, 0], label_part[0, 2, 2], atol=1e-4)
    # Gradients reach the kernel's condition channels.
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer([images, one_hot]))
    assert np.abs(tape.gradient(loss, layer.kernel)[:, :, 2:]).sum() > 0
    clone = ConditionPlanesConv2D.from_config(layer.get_config())
    assert (clone.filters, clone.kernel_size, clone.strides, clone.padding) == (6, 3, strides, padding)
    with pytest.raises(ValueError, match="Received: filters=6, kernel_size=3, strides=1, padding='full'"):
        ConditionPlanesConv2D(6, 3, padding="full")
