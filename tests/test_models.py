import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from conftest import GANS, striped_digits, tiny_batches
from gan_tf import CGAN, DCGAN, GAN, MLPGAN, MODELS

SMALL = dict(latent_dim=8, seed=0)


def make(model_class, image_shape=(28, 28, 1), **kwargs):
    config = dict(SMALL, image_shape=image_shape, **kwargs)
    if model_class.conditional:
        config["num_classes"] = 10
    return model_class(**config)


def weights(network):
    return [np.array(v) for v in network.trainable_variables]


def generate(gan, count, seed):
    if gan.conditional:
        return gan.generate(labels=np.arange(count) % 10, seed=seed)
    return gan.generate(count, seed=seed)


@pytest.mark.parametrize("name", list(GANS))
def test_a_few_steps_change_both_networks(name):
    gan = make(MODELS[name])
    gan.compile()
    g_before, d_before = weights(gan.generator), weights(gan.discriminator)
    history = gan.fit(tiny_batches(3, value_range=gan.value_range), epochs=1, verbose=0)
    for before, network in ((g_before, gan.generator), (d_before, gan.discriminator)):
        after = weights(network)
        assert all(not np.allclose(b, a) for b, a in zip(before, after) if b.ndim > 1), network.name
    assert set(history.history) == {metric.name for metric in gan.metrics} >= {"d_loss", "g_loss"}
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert int(gan.d_optimizer.iterations) == 3 * gan.d_steps and int(gan.g_optimizer.iterations) == 3


@pytest.mark.parametrize("name", list(GANS))
@pytest.mark.parametrize("image_shape", [(28, 28, 1), (32, 32, 3)])
def test_generated_shapes_and_value_range(name, image_shape):
    gan = make(MODELS[name], image_shape=image_shape)
    images = generate(gan, 5, seed=1)
    assert images.shape == (5,) + image_shape and images.dtype == np.float32
    low, high = gan.value_range
    assert images.min() >= low and images.max() <= high
    np.testing.assert_array_equal(images, generate(gan, 5, seed=1))
    assert not np.array_equal(images, generate(gan, 5, seed=2))


def test_value_ranges_match_the_output_activations():
    assert MLPGAN.value_range == (0.0, 1.0)  # sigmoid
    assert DCGAN.value_range == CGAN.value_range == (-1.0, 1.0)  # tanh


def test_mlp_gan_is_the_tutorial_network():
    gan = MLPGAN(seed=0)
    assert gan.latent_dim == 100 and gan.noise == "uniform"
    g_dense = [l for l in gan.generator.layers if isinstance(l, keras.layers.Dense)]
    d_dense = [l for l in gan.discriminator.layers if isinstance(l, keras.layers.Dense)]
    assert [l.units for l in g_dense] == [128, 784] and [l.units for l in d_dense] == [128, 1]
    # z feeds the hidden layer, and the hidden layer feeds the output (not z: the tutorial slip).
    assert g_dense[0].kernel.shape == (100, 128) and g_dense[1].kernel.shape == (128, 784)
    assert gan.generator.count_params() == 100 * 128 + 128 + 128 * 784 + 784
    assert gan.discriminator.count_params() == 784 * 128 + 128 + 128 + 1


def test_dcgan_is_the_tensorflow_tutorial_network():
    gan = DCGAN(seed=0)
    transposed = [l for l in gan.generator.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert [(l.filters, l.strides) for l in transposed] == [(128, (1, 1)), (64, (2, 2)), (1, (2, 2))]
    assert gan.generator.layers[1].units == 7 * 7 * 256
    conv = [l for l in gan.discriminator.layers if isinstance(l, keras.layers.Conv2D)]
    assert [(l.filters, l.strides) for l in conv] == [(64, (2, 2)), (128, (2, 2))]
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in gan.discriminator.layers)
    batch_norms = [l for l in gan.generator.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(batch_norms) == 3  # after Dense and the first two ConvT, not after the output


def test_invalid_arguments_are_rejected_with_the_received_value():
    with pytest.raises(ValueError, match="real_label.*Received: real_label=1.5"):
        DCGAN(real_label=1.5)
    with pytest.raises(ValueError, match="d_steps.*Received: d_steps=0"):
        DCGAN(d_steps=0)
    with pytest.raises(ValueError, match="noise.*Received: noise='cauchy'"):
        MLPGAN(noise="cauchy")
    with pytest.raises(ValueError, match="divisible by 4"):
        DCGAN(image_shape=(30, 30, 1))
    with pytest.raises(ValueError, match="two different optimizer instances"):
        optimizer = keras.optimizers.Adam()
        DCGAN(**SMALL).compile(d_optimizer=optimizer, g_optimizer=optimizer)
    with pytest.raises(ValueError, match="not `loss`"):
        DCGAN(**SMALL).compile(loss="mse")


def _linear_gan(real_label):
    """G outputs a constant image whatever z is; D is a fixed linear function: D's logits are known."""
    image_shape = (2, 2, 1)
    z = keras.Input((3,))
    x = keras.layers.Dense(4, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(0.25))(z)
    generator = keras.Model(z, keras.layers.Reshape(image_shape)(x))
    images = keras.Input(image_shape)
    w = np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32")
    logit = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(w), bias_initializer="zeros")(
        keras.layers.Flatten()(images)
    )
    gan = GAN(generator, keras.Model(images, logit), latent_dim=3, real_label=real_label, seed=0)
    # Learning rate 0: the networks stay fixed, so every logged value is a function of the inputs.
    gan.compile(d_optimizer=keras.optimizers.SGD(0.0), g_optimizer=keras.optimizers.SGD(0.0))
    return gan, w


@pytest.mark.parametrize("real_label", [0.9, 1.0])
def test_logged_losses_equal_a_hand_computation(real_label):
    gan, w = _linear_gan(real_label)
    real = np.random.default_rng(0).normal(size=(6, 2, 2, 1)).astype("float32")
    history = gan.fit(real, batch_size=6, epochs=1, verbose=0, shuffle=False).history

    real_logits = real.reshape(6, 4) @ w[:, 0]
    fake_logit = 0.25 * w.sum()
    log_sigmoid = lambda x: -np.log1p(np.exp(-x))  # noqa: E731
    d_loss = np.mean(
        -(real_label * log_sigmoid(real_logits) + (1 - real_label) * log_sigmoid(-real_logits))
        - log_sigmoid(-fake_logit)
    )
    g_loss = -log_sigmoid(fake_logit)  # targets 1: no smoothing on G's side
    np.testing.assert_allclose(history["d_loss"][0], d_loss, rtol=1e-5)
    np.testing.assert_allclose(history["g_loss"][0], g_loss, rtol=1e-5)
    np.testing.assert_allclose(history["d_real"][0], np.mean(1 / (1 + np.exp(-real_logits))), rtol=1e-5)
    np.testing.assert_allclose(history["d_fake"][0], 1 / (1 + np.exp(-fake_logit)), rtol=1e-5)


def test_d_steps_runs_k_discriminator_updates_per_generator_update():
    gan = make(DCGAN, d_steps=3)
    gan.compile()
    gan.fit(tiny_batches(2), epochs=1, verbose=0)
    assert int(gan.d_optimizer.iterations) == 6 and int(gan.g_optimizer.iterations) == 2


def test_run_eagerly_trains_like_the_compiled_step():
    results = []
    for run_eagerly in (False, True):
        keras.utils.set_random_seed(0)
        gan = make(MLPGAN)
        gan.compile(run_eagerly=run_eagerly)
        gan.fit(tiny_batches(2, value_range=gan.value_range), epochs=1, verbose=0)
        results.append(weights(gan.generator))
    for compiled, eager in zip(*results):
        np.testing.assert_allclose(compiled, eager, rtol=1e-4, atol=1e-6)


def test_noise_is_reproducible_from_the_seed_and_follows_the_distribution():
    uniform = MLPGAN(seed=5)
    z = np.asarray(uniform.sample_noise(4000))
    assert z.shape == (4000, 100) and z.min() >= -1 and z.max() <= 1
    np.testing.assert_allclose(z.mean(), 0.0, atol=0.01)
    np.testing.assert_allclose(z, MLPGAN(seed=5).sample_noise(4000))
    assert not np.allclose(np.asarray(uniform.sample_noise(4)), z[:4])  # the stream advances
    gaussian = np.asarray(DCGAN(seed=5).sample_noise(4000))
    np.testing.assert_allclose(gaussian.std(), 1.0, atol=0.01)


@pytest.mark.parametrize("name", list(GANS))
def test_config_round_trips(name):
    critic = "real_label" not in inspect.signature(MODELS[name]).parameters  # no targets
    gan = make(MODELS[name], d_steps=2, **({} if critic else {"real_label": 0.8}))
    config = gan.get_config()
    clone = MODELS[name].from_config(config)
    assert clone.get_config() == config
    assert clone.d_steps == 2 and config["latent_dim"] == 8  # LAPGAN's z also holds its noise planes
    assert critic or clone.real_label == 0.8


def test_base_gan_config_round_trips_the_networks():
    gan, _ = _linear_gan(0.9)
    clone = GAN.from_config(gan.get_config())
    assert clone.generator.count_params() == gan.generator.count_params()
    assert clone.get_config()["real_label"] == 0.9


@pytest.mark.parametrize("name", list(GANS))
def test_keras_file_round_trip_keeps_weights_optimizers_and_trains_on(name, tmp_path):
    gan = make(MODELS[name])
    gan.compile(
        d_optimizer=keras.optimizers.Adam(3e-4, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.4),
    )
    data = tiny_batches(2, value_range=gan.value_range)
    gan.fit(data, epochs=1, verbose=0)
    path = str(tmp_path / "gan.keras")
    gan.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)

    assert type(loaded) is type(gan)
    np.testing.assert_array_equal(generate(loaded, 4, seed=3), generate(gan, 4, seed=3))
    assert int(loaded.d_optimizer.iterations) == 2 * gan.d_steps and int(loaded.g_optimizer.iterations) == 2
    np.testing.assert_allclose(float(loaded.g_optimizer.learning_rate), 1e-4)
    assert float(loaded.g_optimizer.beta_1) == pytest.approx(0.4)
    for saved, restored in zip(gan.d_optimizer.variables, loaded.d_optimizer.variables):
        np.testing.assert_array_equal(np.array(saved), np.array(restored))
    # The noise stream resumes where it was, and training continues.
    np.testing.assert_array_equal(np.array(loaded.seed_generator.state), np.array(gan.seed_generator.state))
    loaded.fit(data, epochs=1, verbose=0)
    assert int(loaded.g_optimizer.iterations) == 4


def test_cgan_needs_labels_in_range_and_batches_with_labels():
    gan = make(CGAN)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 10\)"):
        gan.generate(labels=[3, 10])
    gan.compile()
    images_only = tiny_batches(1).map(lambda images, labels: images)
    with pytest.raises(ValueError, match="CGAN trains on \\(images, labels\\)"):
        gan.fit(images_only, epochs=1, verbose=0)


def test_cgan_output_depends_on_the_label():
    gan = make(CGAN)
    z = tf.random.normal((2, 8), seed=0)
    same_noise = tf.concat([z[:1], z[:1]], axis=0)
    images = np.asarray(gan([same_noise, tf.constant([1, 7])]))
    assert not np.allclose(images[0], images[1])


def test_cgan_mismatched_labels_are_always_wrong_and_cover_the_other_classes():
    gan = make(CGAN)
    labels = tf.constant(np.arange(3000) % 10, dtype="int32")
    wrong = np.asarray(gan.sample_mismatched_labels(labels))
    assert wrong.min() >= 0 and wrong.max() < 10
    assert not np.any(wrong == np.asarray(labels))
    for label in range(10):  # each of the 9 other classes, about 300 / 9 times
        counts = np.bincount(wrong[np.asarray(labels) == label], minlength=10)
        assert counts[label] == 0 and counts.min(initial=99, where=np.arange(10) != label) >= 15


def test_cgan_mismatch_weight_is_checked_and_round_trips():
    with pytest.raises(ValueError, match="mismatch_weight"):
        make(CGAN, mismatch_weight=-0.5)
    gan = make(CGAN, mismatch_weight=0.5)
    assert CGAN.from_config(gan.get_config()).mismatch_weight == 0.5


def test_cgan_mismatch_term_teaches_d_to_reject_real_images_with_wrong_labels():
    wrong_pair_probability = {}
    for weight in (0.0, 1.0):
        gan = CGAN(num_classes=4, latent_dim=8, dropout=0.0, seed=0, mismatch_weight=weight)
        gan.compile()
        gan.fit(striped_digits(), epochs=3, verbose=0)
        images, labels = next(iter(striped_digits().unbatch().batch(128)))
        right = float(ops.mean(ops.sigmoid(gan.discriminator([images, labels]))))
        wrong = float(ops.mean(ops.sigmoid(gan.discriminator([images, (labels + 1) % 4]))))
        assert right > 0.5, (weight, right)
        wrong_pair_probability[weight] = wrong
    # Without the term D learns the pairing only through G's samples; with it, directly.
    assert wrong_pair_probability[1.0] < 0.5 * wrong_pair_probability[0.0], wrong_pair_probability
