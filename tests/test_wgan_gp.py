"""WGAN-GP: its losses and gradient penalty against hand-worked values, and the mechanism at work."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_tf import WGANGP
from gan_tf import data
from gan_tf.nn import losses
from gan_tf.serving.export import export_generator
from gan_tf.training import TrainConfig, train


def test_wasserstein_and_hinge_losses_by_hand():
    real = np.array([[2.0], [-1.0]], np.float32)
    fake = np.array([[0.5], [-3.0]], np.float32)
    np.testing.assert_allclose(losses.wasserstein_critic_loss(real, fake), [0.5 - 2.0, -3.0 + 1.0])
    np.testing.assert_allclose(losses.wasserstein_generator_loss(fake), [-0.5, 3.0])
    # max(0, 1 - r) + max(0, 1 + f): (0 + 1.5), (2 + 0)
    np.testing.assert_allclose(losses.hinge_discriminator_loss(real, fake), [1.5, 2.0])


def _linear_critic(weights):
    weights = tf.constant(weights, tf.float32)
    return lambda images: tf.reduce_sum(images * weights, axis=[1, 2, 3])[:, None]


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_gradient_penalty_of_a_linear_critic_is_exactly_known(scale):
    # D(x) = <w, x> has gradient w everywhere: the penalty is (||w|| - 1)^2 for any interpolate.
    rng = np.random.default_rng(0)
    direction = rng.normal(size=(1, 4, 4, 2)).astype(np.float32)
    weights = scale * direction / np.linalg.norm(direction)
    real = rng.normal(size=(5, 4, 4, 2)).astype(np.float32)
    fake = rng.normal(size=(5, 4, 4, 2)).astype(np.float32)
    penalty = losses.gradient_penalty(_linear_critic(weights), real, fake, rng.uniform(size=5))
    np.testing.assert_allclose(penalty, np.full(5, (scale - 1.0) ** 2), atol=1e-5)


def test_gradient_penalty_interpolates_per_example_for_any_rank():
    # D(x) = sum(x^2) / 2 has gradient x_hat: with e = 1 the interpolate is the real image, with
    # e = 0 the fake one, so the norms are those of each.
    critic = lambda x: 0.5 * tf.reduce_sum(tf.square(x), axis=1, keepdims=True)
    real = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)  # rank 2 "images"
    fake = np.array([[0.0, 0.0], [0.0, 2.0]], np.float32)
    penalty = losses.gradient_penalty(critic, real, fake, np.array([1.0, 0.0], np.float32))
    np.testing.assert_allclose(penalty, [(5.0 - 1.0) ** 2, (2.0 - 1.0) ** 2], rtol=1e-5)


def test_penalty_is_differentiable_with_respect_to_the_critic_weights():
    dense = keras.layers.Dense(1)
    dense.build((None, 3))
    real, fake = tf.ones((2, 3)), tf.zeros((2, 3))
    with tf.GradientTape() as tape:
        penalty = tf.reduce_mean(losses.gradient_penalty(dense, real, fake, tf.constant([0.3, 0.7])))
    kernel_gradient, _ = tape.gradient(penalty, dense.trainable_variables)
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    w = dense.kernel.numpy()[:, 0]
    norm = np.linalg.norm(w)
    np.testing.assert_allclose(kernel_gradient.numpy()[:, 0], 2 * (norm - 1) * w / norm, rtol=1e-4)


@pytest.fixture(scope="module")
def digits():
    images, labels = data.load_arrays("mnist_5k")
    return data.make_dataset(images[:640], labels[:640], 32, seed=0)


def _interpolate_norms(gan, images, seed=0):
    fakes = gan.generator(gan.draw_noise(len(images), seed), training=False)
    weights = keras.random.uniform((len(images),), seed=seed)
    penalty = losses.gradient_penalty(functools.partial(gan.discriminator, training=True), images, fakes, weights)
    return np.sqrt(penalty.numpy())  # |norm - 1|


def test_training_changes_both_networks_and_drives_critic_gradients_toward_norm_one(digits):
    keras.utils.set_random_seed(0)
    gan = WGANGP(latent_dim=16, seed=0)
    gan.compile()
    images = next(iter(digits))[0]
    before_critic, before_generator = gan.discriminator.get_weights(), gan.generator.get_weights()
    distance_before = float(np.mean(_interpolate_norms(gan, images)))
    history = gan.fit(digits, epochs=1, verbose=0).history  # 20 steps = 100 critic updates
    distance_after = float(np.mean(_interpolate_norms(gan, images)))
    assert any(not np.allclose(a, b) for a, b in zip(before_critic, gan.discriminator.get_weights()))
    assert any(not np.allclose(a, b) for a, b in zip(before_generator, gan.generator.get_weights()))
    assert int(gan.d_optimizer.iterations) == 5 * int(gan.g_optimizer.iterations) == 5 * 20
    assert distance_after < 0.5 * distance_before, (distance_before, distance_after)
    assert set(history) == {"d_loss", "g_loss", "wasserstein", "gradient_penalty"}
    assert history["wasserstein"][0] > 0  # the critic tells real from fake


def test_weight_clipping_keeps_every_critic_weight_in_range(digits):
    gan = WGANGP(latent_dim=16, gp_weight=0.0, clip_value=0.01, d_steps=2, seed=0)
    gan.compile()
    assert isinstance(gan.d_optimizer, keras.optimizers.RMSprop)
    gan.fit(digits.take(3), verbose=0)
    assert max(float(np.abs(w).max()) for w in gan.discriminator.trainable_weights) <= 0.01 + 1e-7
    with pytest.raises(ValueError, match="needs a Lipschitz constraint"):
        WGANGP(gp_weight=0.0)


def test_keras_round_trip_and_export(tmp_path, digits):
    gan = WGANGP(latent_dim=16, d_steps=2, seed=3)
    gan.compile()
    gan.fit(digits.take(2), verbose=0)
    path = str(tmp_path / "wgan.keras")
    gan.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config() == gan.get_config() and loaded.d_steps == 2 and loaded.gp_weight == 10.0
    np.testing.assert_allclose(loaded.generate(4, seed=1), gan.generate(4, seed=1), atol=1e-6)
    assert float(loaded.d_optimizer.beta_1) == 0.0 and float(loaded.d_optimizer.beta_2) == 0.9
    export_path = export_generator(gan, str(tmp_path / "export"))
    restored = tf.saved_model.load(export_path)
    images = restored.signatures["serving_default"](z=tf.zeros((2, 16)))["images"]
    assert images.shape == (2, 28, 28, 1)


def test_train_config_uses_the_models_own_defaults(tmp_path):
    with pytest.raises(ValueError, match="wgan_gp has no argument 'real_label'"):  # a critic has no targets
        TrainConfig(model="wgan_gp", model_args={"real_label": 0.9}).validate()
    result = train(TrainConfig(model="wgan_gp", epochs=1, steps_per_epoch=2, batch_size=16, latent_dim=8,
                               eval_every=0, workdir=str(tmp_path / "run"), export_dir=str(tmp_path / "export"),
                               verbose=0))
    assert result.model.d_steps == 5 and int(result.model.d_optimizer.iterations) == 10
    assert "wasserstein" in result.history
