import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT
from gan_tf import CGAN, DCGAN
from gan_tf import data
from gan_tf.data import classifiers
from gan_tf.metrics import evaluation
from gan_tf.serving.export import export_generator


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("classifier_cache"))


@pytest.fixture(scope="module")
def classifier(cache_dir):
    """The real mnist_5k classifier, trained (about a minute) and cached for this module."""
    return classifiers.load_classifier("mnist_5k", cache_dir=cache_dir)


def test_mnist_5k_classifier_reaches_97_percent_on_held_out_digits(classifier, cache_dir):
    assert classifier.test_accuracy >= 0.97
    cached = classifiers.load_classifier("mnist_5k", cache_dir=cache_dir)  # from the cache, not retrained
    assert cached.test_accuracy == classifier.test_accuracy
    assert sorted(os.listdir(cache_dir)) == ["mnist_5k-classifier-v1.json", "mnist_5k-classifier-v1.keras"]


def test_held_out_split_is_disjoint_and_balanced():
    train_images, train_labels, test_images, test_labels = classifiers.classifier_splits("mnist_5k")
    np.testing.assert_array_equal(np.bincount(test_labels), [100] * 10)
    np.testing.assert_array_equal(np.bincount(train_labels), [400] * 10)
    assert len(train_images) + len(test_images) == 5000


def test_real_data_scores_near_its_floor_and_noise_scores_far(classifier):
    real, labels = data.load_arrays("mnist_5k")
    order = np.random.default_rng(5).permutation(len(real))[:1000]
    real_report = evaluation.evaluate_samples(real[order], "mnist_5k", labels=labels[order], classifier=classifier, seed=1)
    noise = np.random.default_rng(0).integers(0, 256, size=(1000, 28, 28, 1)).astype(np.uint8)
    noise_report = evaluation.evaluate_samples(noise, "mnist_5k", classifier=classifier, seed=1)

    real_fid, noise_fid = real_report["generated"]["fid"], noise_report["generated"]["fid"]
    assert real_fid < 0.05 * noise_fid
    assert real_report["generated"]["classes_covered"] == 10
    assert real_report["generated"]["label_accuracy"] > 0.97
    assert real_report["generated"]["precision"] > 0.8 and real_report["generated"]["recall"] > 0.8
    # Noise lands near the origin of the feature space, inside the real k-NN balls, so its
    # precision is not informative here; its recall (no real digit near a noise sample) is.
    assert noise_report["generated"]["recall"] < 0.05
    assert real_report["floor"]["fid"] < 0.05 * noise_fid
    for key in ("fid", "kid", "kid_std", "classifier_score", "precision", "recall", "classes_covered", "class_kl_to_real"):
        assert key in real_report["floor"] and key in noise_report["generated"]


def _evaluate(*flags, cwd, cache_dir):
    env = {**os.environ, "GAN_TF_CACHE": cache_dir, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "evaluate.py"), *flags],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_evaluate_cli_writes_every_metric_for_a_conditional_export(classifier, cache_dir, tmp_path):
    path = export_generator(CGAN(latent_dim=8, seed=0), str(tmp_path / "cgan"))
    completed = _evaluate(f"--model_path={tmp_path / 'cgan'}", "--dataset=mnist_5k", "--num_samples=200",
                          "--output=metrics.json", cwd=tmp_path, cache_dir=cache_dir)  # the base path TF Serving takes
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "label accuracy" in completed.stdout and "FID" in completed.stdout
    report = json.load(open(tmp_path / "metrics.json"))
    assert report["model_path"] == path  # its newest (here only) version
    assert report["num_samples"] == 200
    assert 0.0 <= report["generated"]["label_accuracy"] <= 1.0
    assert report["floor"]["label_accuracy"] > 0.9  # the classifier on real digits
    assert report["generated"]["fid"] > report["floor"]["fid"]  # an untrained generator


def test_evaluate_cli_errors(cache_dir, tmp_path):
    missing = _evaluate(f"--model_path={tmp_path / 'nowhere'}", cwd=tmp_path, cache_dir=cache_dir)
    assert missing.returncode == 2 and "No model at" in missing.stderr
    path = export_generator(DCGAN(image_shape=(32, 32, 3), latent_dim=8, seed=0), str(tmp_path / "rgb"))
    mismatch = _evaluate(f"--model_path={path}", "--dataset=mnist_5k", cwd=tmp_path, cache_dir=cache_dir)
    assert mismatch.returncode == 2 and "makes [32, 32, 3] images, but mnist_5k has [28, 28, 1]" in mismatch.stderr
    conditional = export_generator(CGAN(latent_dim=8, seed=0), str(tmp_path / "cgan"))
    unlabelled = _evaluate(f"--model_path={conditional}", "--labels=none", cwd=tmp_path, cache_dir=cache_dir)
    assert unlabelled.returncode == 2 and "is a conditional model" in unlabelled.stderr
    assert "--labels=balanced" in unlabelled.stderr
    out_of_range = _evaluate(f"--model_path={conditional}", "--labels=3,10", cwd=tmp_path, cache_dir=cache_dir)
    assert out_of_range.returncode == 2 and "class ids in [0, 9]" in out_of_range.stderr


def test_inception_features_from_a_weights_file(tmp_path):
    import keras

    weights = str(tmp_path / "inception.weights.h5")  # random weights stand in for ImageNet's
    keras.applications.InceptionV3(weights=None).save_weights(weights)
    embedding = evaluation.load_inception(weights)
    digits = data.load_arrays("mnist_5k")[0][:6]
    features, probabilities = embedding.embed(digits)
    assert features.shape == (6, 2048) and probabilities.shape == (6, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    report = evaluation.evaluate_samples(digits, "mnist_5k", labels=np.zeros(6, int), classifier=embedding)
    assert report["classifier"]["features"] == "inception_v3"
    assert {"fid", "kid", "classifier_score", "precision", "recall"} <= set(report["generated"])
    assert "label_accuracy" not in report["generated"] and "classes_covered" not in report["generated"]


def test_inception_without_weights_says_what_to_do(tmp_path):
    with pytest.raises(evaluation.InceptionUnavailableError, match="No Inception-v3 weights file at"):
        evaluation.load_inception(str(tmp_path / "missing.h5"))
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(b"not an HDF5 file")
    with pytest.raises(evaluation.InceptionUnavailableError, match="could not be loaded.*~/.keras/models"):
        evaluation.load_inception(str(damaged))
    path = export_generator(DCGAN(latent_dim=8, seed=0), str(tmp_path / "dcgan"))
    completed = _evaluate(f"--model_path={path}", "--features=inception", f"--inception_weights={damaged}",
                          cwd=tmp_path, cache_dir=str(tmp_path))
    assert completed.returncode == 2 and "Inception-v3's ImageNet weights could not be loaded" in completed.stderr


def test_evaluate_cli_reports_bits_per_dim_for_a_vae_and_none_for_a_gan(classifier, cache_dir, tmp_path):
    from gan_tf import VAE
    from gan_tf.serving.export import export_model

    vae = VAE(latent_dim=4, width=8, importance_samples=4, seed=0)
    vae.compile_optimizers(vae.default_optimizers())
    vae_path = export_model(vae, str(tmp_path / "vae"))
    completed = _evaluate(f"--model_path={vae_path}", "--num_samples=100", "--likelihood_images=70",
                          "--output=vae.json", cwd=tmp_path, cache_dir=cache_dir)
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.load(open(tmp_path / "vae.json"))
    likelihood = report["likelihood"]
    assert likelihood["images"] == 70 and likelihood["split"].startswith("train (the data have no held-out split)")
    assert likelihood["bits_per_dim"] > 0 and likelihood["elbo_bits_per_dim"] >= likelihood["bits_per_dim"] - 0.5
    assert "bits/dim" in completed.stdout and "sharpness" in completed.stdout
    assert report["generated"]["kid_std"] is None and "KID's spread is undefined" in completed.stdout
    assert report["floor"]["sharpness"] == pytest.approx(1.0, abs=0.15)  # real digits against real digits

    gan_path = export_generator(DCGAN(latent_dim=8, seed=0), str(tmp_path / "dcgan"))
    completed = _evaluate(f"--model_path={gan_path}", "--num_samples=100", "--output=gan.json", "--parzen_samples=300",
                          "--likelihood_images=50", cwd=tmp_path, cache_dir=cache_dir)
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.load(open(tmp_path / "gan.json"))
    assert report["likelihood"]["bits_per_dim"] is None
    assert "the model defines no likelihood" in completed.stdout and "Parzen log-lik." in completed.stdout
    # The Parzen estimate of 300 samples (seed 1) on 50 training images, sigma chosen on 1,000 others.
    from gan_tf.metrics import parzen
    from gan_tf.serving.sampling import sample_local

    validation, test, _ = parzen.validation_and_test(data.load_arrays("mnist_5k")[0], num_test=50)
    expected = parzen.parzen_estimate(sample_local(gan_path, 300, seed=1), validation, test)
    assert report["parzen"]["log_likelihood"] == pytest.approx(expected["log_likelihood"])
    assert report["parzen"]["sigma"] == pytest.approx(expected["sigma"]) and report["parzen"]["test_images"] == 50
    assert report["parzen"]["split"].startswith("train")
    refused = _evaluate(f"--model_path={gan_path}", "--parzen_samples=10", "--likelihood_images=0", cwd=tmp_path,
                        cache_dir=cache_dir)
    assert refused.returncode == 2 and "--parzen_samples" in refused.stderr


def test_source_classifiers_train_for_at_least_a_thousand_updates_in_10_to_100_epochs():
    from gan_tf.data.classifiers import source_classifier_epochs

    assert source_classifier_epochs(1800) == 67  # 15 batches of 128: 67 epochs are 1,005 updates
    assert source_classifier_epochs(16000) == 10  # 125 batches: 10 epochs are already 1,250
    assert source_classifier_epochs(50) == 100  # one batch: capped at 100 epochs


def test_evaluate_cli_samples_a_pixelcnn_export_beyond_one_request(classifier, cache_dir, tmp_path):
    from gan_tf import PixelCNN
    from gan_tf.serving.export import export_model

    model = PixelCNN(filters=4, layers=2, kernel_size=3, seed=0)
    model.compile_optimizers(model.default_optimizers())
    path = export_model(model, str(tmp_path / "pixelcnn"))  # at most 64 samples per request
    completed = _evaluate(f"--model_path={path}", "--num_samples=70", "--likelihood_images=0", "--output=report.json",
                          cwd=tmp_path, cache_dir=cache_dir)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert json.load(open(tmp_path / "report.json"))["num_samples"] == 70
