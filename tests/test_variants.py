"""SN-GAN, AC-GAN, SAGAN and BigGAN: each model's mechanism acts, and each exports."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import striped_digits, tiny_batches
from gan_tf import ACGAN, DCGAN, SAGAN, SNGAN, BigGAN
from gan_tf.serving.export import WARMUP_FILE, export_generator
from gan_tf.nn.layers import SelfAttention2D, SpectralNormalization


def _layers(model, kind):
    found = []
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, kind):
            found.append(layer)
    return found


@pytest.mark.parametrize("build", [lambda: SNGAN(latent_dim=8, seed=0),
                                   lambda: DCGAN(latent_dim=8, spectral_norm=True, seed=0)], ids=["sngan", "dcgan"])
def test_sngan_normalizes_every_discriminator_layer_and_iterates_only_in_training(build):
    gan = build()
    wrapped = _layers(gan.discriminator, SpectralNormalization)
    assert len(wrapped) == 3  # two convolutions and the score
    assert all(isinstance(layer.layer, keras.layers.Layer) for layer in wrapped)
    kernels = _layers(gan.discriminator, (keras.layers.Conv2D, keras.layers.Dense))
    assert {id(layer) for layer in kernels} == {id(layer.layer) for layer in wrapped}

    u_initial = [layer.vector_u.numpy().copy() for layer in wrapped]
    gan.discriminator(np.zeros((2, 28, 28, 1), "float32"), training=False)
    for layer, before in zip(wrapped, u_initial):
        np.testing.assert_array_equal(layer.vector_u.numpy(), before)
    gan.compile()
    gan.fit(tiny_batches(2), epochs=1, verbose=0)
    for layer, before in zip(wrapped, u_initial):
        assert not np.allclose(layer.vector_u.numpy(), before)
    sigma, _ = wrapped[-1].spectral_norm()
    assert float(sigma) > 0
    assert type(gan).from_config(gan.get_config()).get_config() == gan.get_config()


def test_acgan_auxiliary_classifier_learns_a_separable_toy_set():
    gan = ACGAN(num_classes=4, latent_dim=8, dropout=0.0, seed=0)
    gan.compile()
    history = gan.fit(striped_digits(), epochs=3, verbose=0).history
    aux_loss = history["aux_loss"]
    assert aux_loss[-1] < 0.5 * aux_loss[0], aux_loss
    assert history["aux_accuracy"][-1] > 0.9
    # D's class head sees only the image: its outputs are [source, class logits].
    source, class_logits = gan.discriminator(np.zeros((3, 28, 28, 1), "float32"))
    assert source.shape == (3, 1) and class_logits.shape == (3, 4)


def test_sagan_attends_in_both_networks():
    gan = SAGAN(latent_dim=8, seed=0)
    blocks = {name: _layers(getattr(gan, name), SelfAttention2D) for name in ("generator", "discriminator")}
    assert [len(found) for found in blocks.values()] == [1, 1]
    generator_shape = gan.generator.get_layer("self_attention").output.shape
    discriminator_shape = gan.discriminator.get_layer("self_attention").output.shape
    assert generator_shape[1:3] == discriminator_shape[1:3] == (14, 14)  # the middle resolution
    assert all(isinstance(layer.layer, keras.layers.Layer) for layer in _layers(gan.generator, SpectralNormalization))
    optimizers = gan.default_optimizers()
    # G as fast as D (chosen by measurement over the paper's two time-scale rates).
    assert float(optimizers["discriminator"].learning_rate) == pytest.approx(float(optimizers["generator"].learning_rate))
    gan.compile()
    gan.fit(tiny_batches(2), epochs=1, verbose=0)
    for found in blocks.values():
        assert float(found[0].gamma.numpy()) != 0.0  # the attention output is now in use


@pytest.fixture(scope="module")
def trained_biggan():
    keras.utils.set_random_seed(0)
    gan = BigGAN(latent_dim=9, width=8, embedding_dim=4, seed=0)
    initial = [np.array(v) for v in gan.generator.weights]
    gan.compile()
    gan.fit(tiny_batches(4), epochs=1, verbose=0)
    return gan, initial


def test_biggan_ema_differs_from_the_raw_weights_and_tracks_them(trained_biggan):
    gan, initial = trained_biggan
    raw = [np.array(v) for v in gan.generator.weights]
    average = [np.array(v) for v in gan.ema_generator.weights]
    trained = [i for i, v in enumerate(gan.generator.weights) if v.trainable and not np.allclose(initial[i], raw[i])]
    assert trained
    for i in trained:
        assert not np.allclose(average[i], raw[i])  # an average, not a copy
        assert np.linalg.norm(average[i] - raw[i]) < np.linalg.norm(initial[i] - raw[i])  # and it follows them
    assert not gan.ema_generator.trainable_weights
    # Samples come from the average.
    z, labels = gan.draw_noise(4, seed=1), tf.range(4)
    np.testing.assert_allclose(gan([z, labels]), gan.ema_generator([z, labels]), atol=1e-6)
    assert not np.allclose(gan([z, labels]), gan.generator([z, labels]), atol=1e-4)


def test_biggan_latent_chunks_labels_and_regularized_kernels(trained_biggan):
    gan, _ = trained_biggan
    z = tf.Variable(gan.draw_noise(2, seed=3))
    labels = tf.constant([1, 2])
    with tf.GradientTape() as tape:
        images = gan.ema_generator([z, labels])
    gradient = np.abs(tape.gradient(images, z).numpy()).sum(axis=0)
    assert gradient.shape == (9,) and np.all(gradient > 0)  # every chunk of z reaches the image
    images = gan.generate(labels=[0, 5], seed=4)
    assert not np.allclose(images[0], gan.generate(labels=[5, 5], seed=4)[0])  # G uses the label
    scores = [gan.discriminator([images, np.array([k, k])]).numpy() for k in (0, 5)]
    assert not np.allclose(*scores)  # and so does the projection discriminator
    paths = [v.path for v in gan.regularized_kernels()]
    assert paths and not any("shared_embedding" in p for p in paths)
    assert any("block0_conv1" in p for p in paths) and all(len(v.shape) >= 2 for v in gan.regularized_kernels())


def test_truncation_bounds_the_noise_and_is_reproducible(trained_biggan):
    gan, _ = trained_biggan
    z = np.asarray(gan.draw_noise(2000, seed=5, truncation=0.5))
    assert np.abs(z).max() <= 0.5 and z.std() < 0.35  # std of N(0,1) truncated at 0.5 is 0.28
    np.testing.assert_array_equal(gan.generate(labels=[3], seed=5, truncation=0.5),
                                  gan.generate(labels=[3], seed=5, truncation=0.5))
    with pytest.raises(ValueError, match="Received: truncation=0"):
        gan.generate(labels=[3], seed=5, truncation=0)


@pytest.mark.parametrize("model_class", [SNGAN, ACGAN, SAGAN, BigGAN])
def test_exports_serve_what_the_keras_model_generates(model_class, tmp_path):
    kwargs = {"num_classes": 10} if model_class.conditional else {}
    gan = model_class(latent_dim=9, seed=0, **kwargs)
    gan.compile()
    gan.fit(tiny_batches(1), epochs=1, verbose=0)
    path = export_generator(gan, str(tmp_path / "export"))
    loaded = tf.saved_model.load(path)
    # Every warmup request runs (TF Serving refuses to load a model whose warmup fails; BigGAN's
    # `sample` requests once lacked their `truncation` input).
    from tensorflow_serving.apis import prediction_log_pb2

    for record in tf.data.TFRecordDataset(os.path.join(path, WARMUP_FILE)).as_numpy_iterator():
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        warm = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        assert loaded.signatures[request.model_spec.signature_name](**warm)["images"].shape[1:] == (28, 28, 1)
    inputs = {"num_samples": tf.constant(3), "seed": tf.constant(7, tf.int64)}
    if gan.conditional:
        inputs["labels"] = tf.constant([2, 4, 6])
    if model_class.exports_truncation:
        inputs["truncation"] = tf.constant(0.0)
    expected = gan.generate(labels=[2, 4, 6], seed=7) if gan.conditional else gan.generate(3, seed=7)
    images = loaded.signatures["sample_seeded"](**inputs)["images"].numpy()
    np.testing.assert_allclose(images, expected, atol=1e-5)
    if model_class.exports_truncation:
        inputs["truncation"] = tf.constant(0.7)
        truncated = loaded.signatures["sample_seeded"](**inputs)["images"].numpy()
        np.testing.assert_allclose(truncated, gan.generate(labels=[2, 4, 6], seed=7, truncation=0.7), atol=1e-5)
        assert not np.allclose(truncated, images)
        for bad in (-0.5, np.nan, np.inf):
            inputs["truncation"] = tf.constant(bad, tf.float32)
            with pytest.raises(tf.errors.InvalidArgumentError, match="truncation must be a finite number >= 0"):
                loaded.signatures["sample_seeded"](**inputs)


def test_train_runs_biggan_end_to_end_and_exports_its_moving_average(tmp_path):
    from gan_tf.training import TrainConfig, train

    config = TrainConfig(model="biggan", epochs=1, steps_per_epoch=2, batch_size=16, latent_dim=9, eval_every=0,
                         workdir=str(tmp_path / "run"), export_dir=str(tmp_path / "export"), verbose=0)
    result = train(config)
    gan = result.model
    assert int(gan.d_optimizer.iterations) == 2 * 2 and int(gan.g_optimizer.iterations) == 2  # 2 D steps each
    assert set(result.history) == {"d_loss", "g_loss", "real_score", "fake_score", "ortho_penalty"}
    signature = tf.saved_model.load(result.export_path).signatures["serving_default"]
    z, labels = gan.draw_noise(2, seed=0), tf.constant([1, 8])
    np.testing.assert_allclose(signature(z=z, labels=labels)["images"], gan.ema_generator([z, labels]), atol=1e-5)


def test_any_model_can_sample_from_a_moving_average_of_its_generator(tmp_path):
    from gan_tf import DCGAN

    gan = DCGAN(latent_dim=8, seed=0, ema_decay=0.9)
    assert gan.sampling_generator is gan.ema_generator
    default = DCGAN(latent_dim=8)  # on by default, at 0.999
    assert default.ema_decay == 0.999 and default.sampling_generator is default.ema_generator
    without = DCGAN(latent_dim=8, ema_decay=None)
    assert without.ema_generator is None and without.sampling_generator is without.generator
    expected = [np.array(v) for v in gan.generator.weights]
    gan.compile()

    class AverageByHand(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            step = int(gan.g_optimizer.iterations)
            decay = min(0.9, (1 + step) / (10 + step))  # warmed up: 2/11, 3/12, 4/13
            for i, variable in enumerate(gan.generator.weights):
                expected[i] = decay * expected[i] + (1 - decay) * np.array(variable)

    gan.fit(tiny_batches(3), epochs=1, verbose=0, callbacks=[AverageByHand()])
    average = [np.array(v) for v in gan.ema_generator.weights]
    for by_hand, computed in zip(expected, average):
        np.testing.assert_allclose(computed, by_hand, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(a, np.array(r)) for a, r in zip(average, gan.generator.weights))
    clone = DCGAN.from_config(gan.get_config())
    assert clone.ema_decay == 0.9 and clone.ema_generator is not None
    path = str(tmp_path / "dcgan.keras")
    gan.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for saved, restored in zip(average, loaded.ema_generator.weights):
        np.testing.assert_array_equal(saved, np.array(restored))
    np.testing.assert_array_equal(loaded.generate(2, seed=0), gan.generate(2, seed=0))
    with pytest.raises(ValueError, match="Received: ema_decay=1.0"):
        DCGAN(latent_dim=8, ema_decay=1.0)


def test_the_raw_generator_stays_reachable_beside_its_average():
    from gan_tf import DCGAN
    from gan_tf.models.generative import with_model_args

    gan = DCGAN(latent_dim=8, seed=0, ema_decay=0.9)
    gan.compile()
    gan.fit(tiny_batches(2), epochs=1, verbose=0)
    z = gan.draw_noise(3, seed=1)
    assert not np.allclose(gan(z), gan.generator(z, training=False), atol=1e-4)  # they differ after training

    raw = with_model_args(gan, {"sample_from_average": False})
    assert raw.sampling_generator is raw.generator and raw.ema_generator is not None
    np.testing.assert_array_equal(raw(z), gan.generator(z, training=False))
    np.testing.assert_array_equal(raw.ema_generator(z), gan.ema_generator(z))
    np.testing.assert_array_equal(raw.generate(2, seed=3), np.array(gan.generator(gan.draw_noise(2, seed=3))))
    assert DCGAN.from_config(raw.get_config()).sample_from_average is False
    assert with_model_args(gan, {}) is gan
    with pytest.raises(ValueError, match="ema_decay would change DCGAN's weights"):
        with_model_args(gan, {"ema_decay": None})
    with pytest.raises(ValueError, match="DCGAN has no argument 'colour'"):
        with_model_args(gan, {"colour": 1})


def test_cgan_discriminator_precomputes_the_label_planes_and_an_older_checkpoint_loads_as_saved():
    from gan_tf import CGAN
    from gan_tf.nn.layers import ConditionPlanesConv2D

    keras.utils.set_random_seed(3)
    gan = CGAN(num_classes=20, latent_dim=8, seed=0)
    keras.utils.set_random_seed(3)
    concatenated = CGAN(num_classes=20, latent_dim=8, seed=0, label_planes="concatenated")
    assert gan.label_planes == "precomputed" and _layers(gan.discriminator, ConditionPlanesConv2D)
    assert not _layers(concatenated.discriminator, ConditionPlanesConv2D)
    # The same variables, and a seeded model starts from the same weights in either layout.
    for new_weights, old_weights in zip(gan.discriminator.get_weights(), concatenated.discriminator.get_weights(),
                                        strict=True):
        np.testing.assert_array_equal(new_weights, old_weights)
    images = tf.constant(np.random.default_rng(0).uniform(-1, 1, (6, 28, 28, 1)), tf.float32)
    labels = tf.constant([0, 19, 7, 7, 3, 12])
    np.testing.assert_allclose(gan.discriminator([images, labels]), concatenated.discriminator([images, labels]),
                               atol=1e-5)
    assert CGAN.from_config(gan.get_config()).label_planes == "precomputed"
    with pytest.raises(ValueError, match="Received: label_planes='stacked'"):
        CGAN(label_planes="stacked")

    # A checkpoint of the code before the argument (tests/fixtures/make_cgan_concatenated_fixture.py)
    # loads in the layout its weights were saved in, with the outputs it gave then.
    fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "cgan_concatenated")
    expected = np.load(os.path.join(fixture, "expected.npz"))
    old = keras.saving.load_model(os.path.join(fixture, "cgan.keras"))
    assert old.label_planes == "concatenated" and int(old.g_optimizer.iterations) == int(expected["iterations"]) == 2
    np.testing.assert_allclose(old.discriminator([expected["images"], expected["labels"]], training=False),
                               expected["logits"], atol=1e-5)
    np.testing.assert_allclose(old.generator([expected["z"], expected["labels"]], training=False),
                               expected["generated"], atol=1e-5)


def test_cgan_averages_its_generator_by_default_and_can_stop():
    from gan_tf import CGAN

    default = CGAN(latent_dim=8, seed=0)
    assert default.ema_decay == 0.999 and default.sampling_generator is default.ema_generator
    assert CGAN.from_config(default.get_config()).ema_decay == 0.999
    off = CGAN(latent_dim=8, seed=0, ema_decay=None)
    assert off.ema_generator is None and off.sampling_generator is off.generator
    assert CGAN.from_config(off.get_config()).ema_generator is None  # an old checkpoint without one

    # ema_decay=0: the "average" is G itself after every step, so samples are G's own.
    plain = CGAN(latent_dim=8, seed=0, ema_decay=0.0)
    plain.compile()
    plain.fit(tiny_batches(2), epochs=1, verbose=0)
    z, labels = plain.draw_noise(3, seed=1), tf.constant([0, 4, 9])
    np.testing.assert_array_equal(plain([z, labels]), plain.generator([z, labels], training=False))
