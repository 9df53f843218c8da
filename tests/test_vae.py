"""The VAE and CVAE baselines: training, bounds, the model contract, export, the CLI."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT, eight_bit_stripes
from gan_tf import CVAE, VAE
from gan_tf import data
from gan_tf.data import DatasetInfo
from gan_tf.models.vae import CLASS_PRIOR_STEP_SCALE
from gan_tf.serving.export import export_model
from gan_tf.serving.sampling import sample_local

SMALL = dict(latent_dim=4, width=8, seed=0)


def _uint8(images):
    return np.round((np.clip(np.asarray(images), -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


@pytest.fixture(scope="module")
def trained():
    """A small VAE and CVAE trained a little on the striped toy digits (class k: a band at rows 7k..7k+6)."""
    keras.utils.set_random_seed(0)
    models = {}
    for model_class in (VAE, CVAE):
        kwargs = {"num_classes": 4} if model_class is CVAE else {}
        model = model_class(importance_samples=16, **SMALL, **kwargs)
        model.compile_optimizers(model.default_optimizers())
        history = model.fit(eight_bit_stripes(), epochs=12, verbose=0)
        models[model_class.__name__] = (model, history.history)
    return models


def test_training_lowers_the_bound_and_logs_its_parts(trained):
    for name, (model, history) in trained.items():
        assert set(history) == {"loss", "reconstruction", "kl", "bits_per_dim"}
        assert history["bits_per_dim"][-1] < 0.7 * history["bits_per_dim"][0], (name, history["bits_per_dim"])
        # loss = reconstruction + beta * KL, beta 1; bits/dim is that in bits per pixel.
        np.testing.assert_allclose(history["loss"][-1], history["reconstruction"][-1] + history["kl"][-1], rtol=1e-4)
        np.testing.assert_allclose(history["bits_per_dim"][-1], history["loss"][-1] / (784 * np.log(2.0)), rtol=1e-4)
        assert int(model.optimizer.iterations) == 12 * 8


def test_beta_weights_the_kl_term():
    images, _ = next(iter(eight_bit_stripes()))
    for beta in (1.0, 4.0):
        model = VAE(beta=beta, **SMALL)
        model.compile_optimizers({"model": keras.optimizers.SGD(0.0)})  # measure, do not move
        logs = model.train_step(images)
        np.testing.assert_allclose(float(logs["loss"]), float(logs["reconstruction"]) + beta * float(logs["kl"]), rtol=1e-5)


def test_the_importance_weighted_bound_is_above_the_elbo_and_matches_the_export(trained, tmp_path):
    model, _ = trained["VAE"]
    images, _ = next(iter(eight_bit_stripes().unbatch().batch(12)))
    images = _uint8(images)
    bounds = model.log_likelihood(images, seed=3)
    assert bounds["log_likelihood"].shape == bounds["elbo"].shape == (12,)
    assert np.mean(bounds["log_likelihood"] - bounds["elbo"]) > 0  # tighter on average (16 samples)
    np.testing.assert_allclose(bounds["bits_per_dim"], -bounds["log_likelihood"] / (784 * np.log(2.0)), rtol=1e-5)
    # Random images are far less likely than the digits it learned.
    noise = np.random.default_rng(0).integers(0, 256, (12, 28, 28, 1)).astype(np.uint8)
    assert model.log_likelihood(noise)["bits_per_dim"].mean() > bounds["bits_per_dim"].mean() + 0.5

    served = tf.saved_model.load(export_model(model, str(tmp_path / "export"))).signatures["log_likelihood"]
    outputs = served(images_uint8=tf.constant(images), seed=tf.constant(3, tf.int64))
    np.testing.assert_allclose(outputs["log_likelihood"].numpy(), bounds["log_likelihood"], rtol=1e-4)
    np.testing.assert_allclose(outputs["elbo"].numpy(), bounds["elbo"], rtol=1e-4)


def test_export_samples_encodes_and_decodes_as_the_keras_model(trained, tmp_path):
    for name, (model, _) in trained.items():
        path = export_model(model, str(tmp_path / name))
        signatures = tf.saved_model.load(path).signatures
        conditional = name == "CVAE"
        labels = {"labels": tf.constant([1, 3, 0])} if conditional else {}
        seeded = signatures["sample_seeded"](num_samples=tf.constant(3), seed=tf.constant(7, tf.int64), **labels)
        expected = model.sample(3, seed=7, conditions={"labels": [1, 3, 0]} if conditional else None).images
        np.testing.assert_allclose(seeded["images"].numpy(), expected, atol=1e-5)
        images = _uint8(expected)
        encoded = signatures["encode"](images_uint8=tf.constant(images), **labels)
        mean, log_variance = model.posterior(images.astype(np.float32) / 127.5 - 1.0, labels.get("labels"))
        np.testing.assert_allclose(encoded["mean"].numpy(), np.asarray(mean), atol=1e-5)
        np.testing.assert_allclose(encoded["log_variance"].numpy(), np.asarray(log_variance), atol=1e-5)
        decoded = signatures["serving_default"](z=tf.constant(np.asarray(mean)), **labels)
        np.testing.assert_allclose(decoded["images"].numpy(), np.asarray(model.decode(mean, labels.get("labels"))), atol=1e-5)
        assert decoded["images_uint8"].dtype == tf.uint8
        # What a client gets wrong is refused with a message naming it.
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"images_uint8 must have shape \(batch, 28, 28, 1\)"):
            signatures["encode"](images_uint8=tf.zeros((2, 32, 32, 1), tf.uint8), **({"labels": tf.constant([0, 1])} if conditional else {}))
        with pytest.raises(tf.errors.InvalidArgumentError, match="at most 64 rows"):
            signatures["log_likelihood"](images_uint8=tf.zeros((65, 28, 28, 1), tf.uint8), seed=tf.constant(0, tf.int64),
                                         **({"labels": tf.zeros([65], tf.int32)} if conditional else {}))
        if conditional:
            with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be < num_classes=4"):
                signatures["encode"](images_uint8=tf.constant(images), labels=tf.constant([1, 4, 0]))
        np.testing.assert_array_equal(sample_local(path, 3, [1, 3, 0] if conditional else None, seed=7), _uint8(expected))


def test_the_cvae_draws_the_class_it_is_asked_for(trained):
    model, _ = trained["CVAE"]
    band = {}
    for label in range(4):
        images = model.sample(32, seed=1, conditions={"labels": [label]}).images
        band[label] = int(np.argmax(images.mean(axis=(0, 2, 3)).reshape(4, 7).mean(axis=1)))  # brightest band
    assert band == {0: 0, 1: 1, 2: 2, 3: 3}
    preview = model.preview(rows=4, columns=8, seed=0).reshape(4, 8, 28, 28, 1)  # row k: class k
    assert [int(np.argmax(row.mean(axis=(0, 2, 3)).reshape(4, 7).mean(axis=1))) for row in preview] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\)"):
        model.sample(2, conditions={"labels": [4]})


def test_the_class_prior_bounds_are_those_of_the_model_written_in_z():
    """With `class_prior`, z ~ N(mean_y, diag(var_y)) and x ~ p(x|z, y): the model's ELBO and
    importance-weighted bound (computed in the standardized latent) equal the same bounds
    computed directly in z with the class's Gaussian as the prior."""
    model = CVAE(num_classes=3, class_prior=True, importance_samples=4, **SMALL)
    statistics = model.prior.statistics.embeddings
    statistics.assign(np.random.default_rng(0).normal(size=statistics.shape).astype(np.float32) / CLASS_PRIOR_STEP_SCALE)
    images = np.random.default_rng(1).uniform(-1.0, 1.0, (2, 28, 28, 1)).astype(np.float32)
    labels = np.array([2, 0], np.int32)
    eps = np.random.default_rng(2).normal(size=(2, 4, 4)).astype(np.float32)
    elbo, bound = (np.asarray(b, np.float64) for b in model.log_likelihood_bounds(images, labels, eps))

    statistics_z = np.asarray(model.encoder([images, labels]), np.float64)
    mean, log_variance = statistics_z[:, :4], statistics_z[:, 4:]
    prior = CLASS_PRIOR_STEP_SCALE * np.asarray(statistics, np.float64)[labels]  # the table is scaled down
    prior_mean, prior_log_variance = prior[:, :4], prior[:, 4:]
    z = mean[:, None] + np.exp(0.5 * log_variance)[:, None] * eps  # the same draws, in z

    def log_normal(values, m, lv):
        return -0.5 * np.sum((values - m) ** 2 / np.exp(lv) + lv + np.log(2 * np.pi), axis=-1)

    decoded = model.decoder([z.reshape(8, 4).astype(np.float32), np.repeat(labels, 4)])
    log_px = np.asarray(model.reconstruction_log_likelihood(np.repeat(images, 4, axis=0), decoded), np.float64).reshape(2, 4)
    log_w = log_px + log_normal(z, prior_mean[:, None], prior_log_variance[:, None]) - log_normal(
        z, mean[:, None], log_variance[:, None])
    kl = 0.5 * np.sum(np.exp(log_variance - prior_log_variance) + (mean - prior_mean) ** 2 / np.exp(prior_log_variance)
                      - 1.0 - log_variance + prior_log_variance, axis=1)
    np.testing.assert_allclose(elbo, log_px.mean(axis=1) - kl, rtol=1e-4)
    np.testing.assert_allclose(bound, np.log(np.mean(np.exp(log_w - log_w.max(1, keepdims=True)), axis=1))
                               + log_w.max(1), rtol=1e-4)
    # Samples of class y decode z = mean_y + std_y * u for the prior's u ~ N(0, I).
    u = np.random.default_rng(3).normal(size=(2, 4)).astype(np.float32)
    np.testing.assert_allclose(model([u, labels]), model.decoder([prior_mean + np.exp(0.5 * prior_log_variance) * u,
                                                                  labels]), atol=1e-5)
    with pytest.raises(ValueError, match="class_prior.*num_classes"):
        VAE(class_prior=True, **SMALL)


def test_from_data_a_vae_ignores_classes_and_a_cvae_needs_them():
    labelled, unlabelled = DatasetInfo((28, 28, 1), 10, tuple("abcdefghij")), DatasetInfo((32, 32, 3), 0, ())
    assert VAE.from_data(labelled, **SMALL).num_classes is None
    assert CVAE.from_data(labelled, **SMALL).num_classes == 10
    assert VAE.from_data(unlabelled, **SMALL).image_shape == (32, 32, 3)
    with pytest.raises(ValueError, match="CVAE is conditional and needs labelled data"):
        CVAE.from_data(unlabelled, **SMALL)
    for bad, message in (({"beta": 0}, "beta"), ({"latent_dim": 0}, "latent_dim"), ({"importance_samples": 0}, "importance_samples")):
        with pytest.raises(ValueError, match=f"{message}.*Received"):
            VAE(**{**SMALL, **bad})


def test_config_and_keras_file_round_trip_weights_optimizer_and_stream(trained, tmp_path):
    model, _ = trained["CVAE"]
    assert CVAE.from_config(model.get_config()).get_config() == model.get_config()
    # A config saved before the class prior existed (no such key) means the N(0, I) prior; one
    # saved before the temperature, samples from the prior itself.
    older = {key: value for key, value in model.get_config().items() if key not in ("class_prior", "temperature")}
    assert model.class_prior and not CVAE.from_config(older).class_prior
    assert model.temperature == 0.7 and CVAE.from_config(older).temperature == 1.0 and VAE().temperature == 1.0
    model.save(tmp_path / "cvae.keras")
    loaded = keras.saving.load_model(tmp_path / "cvae.keras", safe_mode=True)
    assert type(loaded) is CVAE and loaded.num_classes == 4
    np.testing.assert_array_equal(loaded.sample(3, seed=2).images, model.sample(3, seed=2).images)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations)
    for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(restored))
    np.testing.assert_array_equal(np.asarray(loaded.seed_generator.state), np.asarray(model.seed_generator.state))


def test_one_step_on_two_replicas_equals_one_device():
    images = data.make_dataset(*data.load_arrays("mnist_5k"), batch_size=16, seed=1)
    batch = next(iter(images))
    from gan_tf.training.distribute import make_strategy

    weights, initial = {}, CVAE(**SMALL).get_weights()
    for devices, strategy in ((1, tf.distribute.get_strategy()), (2, make_strategy("mirrored", cpu_devices=2))):
        with strategy.scope():
            model = CVAE(**SMALL)
            model.compile_optimizers({"model": keras.optimizers.SGD(0.1)})
        model.set_weights(initial)
        model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)
        weights[devices] = [np.asarray(v) for v in model.trainable_variables]
    for one, two in zip(weights[1], weights[2]):
        np.testing.assert_allclose(one, two, rtol=1e-4, atol=1e-5)  # float32 sums in another order
    assert not np.allclose(weights[1][0], initial[0])  # it did train


def test_train_py_trains_and_exports_a_cvae(tmp_path):
    flags = ["--model=cvae", "--epochs=2", "--steps_per_epoch=3", "--batch_size=16", "--latent_dim=4",
             "--model_arg=width=8", "--model_arg=beta=2", "--eval_every=0", "--workdir=run", "--export_dir=export"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "train.py"), *flags], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    signatures = tf.saved_model.load(str(tmp_path / "export" / "1")).signatures
    assert set(signatures) >= {"serving_default", "sample", "sample_seeded", "encode", "decode", "log_likelihood"}
    images = signatures["sample"](num_samples=tf.constant(2), labels=tf.constant([5]))["images_uint8"]
    assert images.shape == (2, 28, 28, 1)
    assert (tmp_path / "run" / "samples" / "epoch_0002.png").exists()
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,bits_per_dim,kl,loss,reconstruction") and len(history) == 3


def test_samples_are_drawn_at_the_sampling_temperature_in_keras_and_the_export(trained, tmp_path):
    """`temperature=t` decodes z = t * u with u the prior's N(0, I) draw, in `sample` and the
    exported `sample_seeded` alike; `decode` of a given z is unchanged."""
    model, _ = trained["CVAE"]
    labels = [1, 3, 0]
    original = model.temperature
    try:
        model.temperature = 1.0
        at_one = model.sample(3, seed=7, conditions={"labels": labels}).images
        model.temperature = 0.5
        cooled = model.sample(3, seed=7, conditions={"labels": labels}).images
        u = keras.random.normal((3, model.latent_dim), seed=7)
        np.testing.assert_allclose(cooled, np.asarray(model.decode(0.5 * u, labels)), atol=1e-6)
        np.testing.assert_allclose(at_one, np.asarray(model.decode(u, labels)), atol=1e-6)
        assert np.abs(cooled - at_one).max() > 0.1
        signatures = tf.saved_model.load(export_model(model, str(tmp_path / "export"))).signatures
        served = signatures["sample_seeded"](num_samples=tf.constant(3), seed=tf.constant(7, tf.int64),
                                             labels=tf.constant(labels))
        np.testing.assert_allclose(served["images"].numpy(), cooled, atol=1e-5)
        decoded = signatures["decode"](z=tf.constant(np.asarray(u)), labels=tf.constant(labels))
        np.testing.assert_allclose(decoded["images"].numpy(), at_one, atol=1e-5)
        assert CVAE.from_config(model.get_config()).temperature == 0.5
    finally:
        model.temperature = original
    with pytest.raises(ValueError, match="temperature"):
        VAE(temperature=0.0, **SMALL)
