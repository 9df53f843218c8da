import logging

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from gan_tf import SelfConditionedGAN, open_source
from gan_tf.models.self_conditioned_gan import ClusterFromNoise
from gan_tf.serving.export import export_generator

SMALL = dict(latent_dim=8, width=8, seed=0)


def band_images(per_band=24, bands=4, seed=0):
    """uint8 28x28 images: band k is bright on rows 7k..7k+6, with noise (k-means can find the bands)."""
    rng = np.random.default_rng(seed)
    band = np.repeat(np.arange(bands), per_band)
    images = rng.integers(0, 40, (len(band), 28, 28, 1))
    for index, k in enumerate(band):
        images[index, 7 * k : 7 * k + 7] += 200
    order = rng.permutation(len(band))
    return images[order].astype(np.uint8), band[order]


def with_shares(shares, noise="gaussian"):
    layer = ClusterFromNoise(len(shares), noise)
    layer.shares.assign(np.asarray(shares, np.float32))
    return layer


def test_the_cluster_is_the_inverse_cdf_of_the_shares_at_the_first_coordinate():
    # Shares 0.5, 0, 0.3, 0.2: the CDF's steps are at 0.5, 0.5, 0.8, 1. Phi(z0) = 0.25, 0.65, 0.9
    # fall in clusters 0, 2 and 3, each at the middle of its interval, so z0 is redrawn as 0.
    layer = with_shares([0.5, 0.0, 0.3, 0.2])
    first = stats.norm.ppf([0.25, 0.65, 0.9]).astype(np.float32)
    noise = np.stack([first, [1.0, 2.0, 3.0]], axis=1)
    redrawn, cluster = layer(noise)
    np.testing.assert_array_equal(cluster.numpy(), [0, 2, 3])
    np.testing.assert_allclose(redrawn.numpy()[:, 0], 0.0, atol=1e-5)
    np.testing.assert_array_equal(redrawn.numpy()[:, 1], [1.0, 2.0, 3.0])  # the other coordinates pass


@pytest.mark.parametrize("noise", ["gaussian", "uniform"])
def test_clusters_follow_the_shares_and_the_redrawn_noise_is_the_prior_whatever_the_cluster(noise):
    shares = np.array([0.5, 0.0, 0.3, 0.2])
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((40_000, 3)) if noise == "gaussian" else rng.uniform(-1, 1, (40_000, 3))).astype(np.float32)
    redrawn, cluster = with_shares(shares, noise)(z)
    redrawn, cluster = redrawn.numpy(), cluster.numpy()
    np.testing.assert_allclose(np.bincount(cluster, minlength=4) / len(z), shares, atol=0.01)
    prior = stats.norm.cdf if noise == "gaussian" else stats.uniform(-1, 2).cdf
    for k in (0, 2, 3):  # within each cluster, z0 is again a draw from the prior
        assert stats.kstest(redrawn[cluster == k, 0], prior).pvalue > 1e-3, k


def test_clusters_are_k_means_on_principal_components_and_the_step_assigns_the_nearest_centroid():
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    images, band = band_images()
    gan = SelfConditionedGAN(num_clusters=4, cluster_components=5, cluster_images=96, **SMALL)
    clusters = gan.fit_clusters(images)
    # Each band is one cluster: k-means finds the structure without being told it.
    assert len(set(zip(band, clusters))) == 4
    np.testing.assert_array_equal(gan.assign_clusters(gan.scaled(images)).numpy(), clusters)
    pixels = gan.scaled(images).reshape(len(images), -1)
    pca = PCA(5, random_state=0).fit(pixels)
    expected = KMeans(4, n_init=10, random_state=0).fit(pca.transform(pixels)).labels_
    np.testing.assert_array_equal(clusters, expected)
    np.testing.assert_allclose(gan.cluster_from_noise.shares.numpy(), np.bincount(clusters) / len(images))
    assert gan.clusters_fitted
    with pytest.raises(ValueError, match=r"uint8 images \[N, 28, 28, 1\]. Received shape \(3, 28, 28\)"):
        gan.fit_clusters(images[:3, ..., 0])
    with pytest.raises(ValueError, match="at least num_clusters=4 images. Received 3"):
        gan.fit_clusters(images[:3])


def test_from_data_fits_the_clusters_on_the_images_it_will_train_on():
    source = open_source("mnist_5k").subset(300, seed=0)
    drawn = source.info.training_images(100, 0)
    assert drawn.shape == (100, 28, 28, 1) and drawn.dtype == np.uint8
    assert {image.tobytes() for image in drawn} <= {image.tobytes() for image in source.images}
    gan = SelfConditionedGAN.from_data(source.info, num_clusters=3, cluster_images=100, **SMALL)
    assert gan.clusters_fitted and gan.num_clusters == 3
    np.testing.assert_allclose(gan.cluster_from_noise.shares.numpy().sum(), 1.0, rtol=1e-6)


def test_data_with_fewer_images_than_clusters_get_one_cluster_per_image(caplog):
    source = open_source("mnist_5k").subset(12, seed=0)
    with caplog.at_level(logging.WARNING):
        gan = SelfConditionedGAN.from_data(source.info, num_clusters=20, cluster_components=5, **SMALL)
    assert "12 training images, fewer than num_clusters=20: using 12 clusters" in caplog.text
    assert gan.num_clusters == 12 and gan.get_config()["num_clusters"] == 12
    np.testing.assert_allclose(gan.cluster_from_noise.shares.numpy(), np.full(12, 1 / 12), rtol=1e-6)
    np.testing.assert_array_equal(np.sort(gan.assign_clusters(gan.scaled(source.images)).numpy()), np.arange(12))


def test_before_clustering_every_image_is_in_cluster_0_and_training_says_so(caplog):
    gan = SelfConditionedGAN(**SMALL)
    images, _ = band_images(per_band=4)
    assert not gan.clusters_fitted
    np.testing.assert_array_equal(gan.assign_clusters(gan.scaled(images)).numpy(), 0)
    np.testing.assert_array_equal(gan.cluster_from_noise(np.random.normal(size=(50, 8)))[1].numpy(), 0)
    gan.compile()
    with caplog.at_level(logging.WARNING):
        gan.fit(tf.data.Dataset.from_tensor_slices(gan.scaled(images)).batch(8), epochs=1, verbose=0)
    assert "the clusters are not fitted" in caplog.text


def test_unconditional_from_outside_the_export_serves_z_alone(tmp_path):
    images, _ = band_images()
    gan = SelfConditionedGAN(num_clusters=4, cluster_components=5, cluster_images=96, **SMALL)
    gan.fit_clusters(images)
    assert not gan.conditional and not gan.needs_labels
    z = gan.draw_noise(6, seed=1)
    redrawn, cluster = gan.cluster_from_noise(z)
    expected = gan.ema_generator([redrawn, cluster]).numpy()  # the averaged G, for the cluster z drew
    np.testing.assert_allclose(gan(z).numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(gan.generate(6, seed=1), expected, atol=1e-6)
    assert gan.sample(6, seed=1).conditions is None
    with pytest.raises(ValueError, match="not conditional"):
        gan.sample(2, conditions={"labels": [0, 1]})
    serve = tf.saved_model.load(export_generator(gan, str(tmp_path))).signatures["serving_default"]
    np.testing.assert_allclose(serve(z=z)["images"].numpy(), expected, atol=1e-5)
    raw = SelfConditionedGAN.from_config({**gan.get_config(), "sample_from_average": False})
    raw.set_weights(gan.get_weights())
    np.testing.assert_allclose(raw(z).numpy(), gan.generator([redrawn, cluster]).numpy(), atol=1e-6)


def test_training_conditions_d_and_g_on_the_real_images_clusters_and_the_keras_file_keeps_them(tmp_path):
    images, _ = band_images()
    gan = SelfConditionedGAN(num_clusters=4, cluster_components=5, cluster_images=96, **SMALL)
    clusters = gan.fit_clusters(images)
    gan.compile()
    data = tf.data.Dataset.from_tensor_slices(gan.scaled(images)).batch(32, drop_remainder=True)
    gan.fit(data, epochs=1, verbose=0)
    assert int(gan.g_optimizer.iterations) == 3
    # What CGAN's step gets as labels are the real batch's clusters.
    batch = next(iter(data))
    unpacked, labels = gan.unpack_labeled_batch(batch)
    np.testing.assert_array_equal(unpacked.numpy(), gan.scaled(images[:32]))
    np.testing.assert_array_equal(labels.numpy(), clusters[:32])

    path = str(tmp_path / "model.keras")
    gan.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is SelfConditionedGAN and loaded.get_config() == gan.get_config()
    for name in ("pixel_mean", "projection", "centroids"):
        np.testing.assert_array_equal(getattr(loaded, name).numpy(), getattr(gan, name).numpy())
    np.testing.assert_array_equal(loaded.cluster_from_noise.shares.numpy(), gan.cluster_from_noise.shares.numpy())
    np.testing.assert_array_equal(loaded.generate(4, seed=2), gan.generate(4, seed=2))


def test_arguments_are_checked_with_the_received_values():
    with pytest.raises(ValueError, match="Received: cluster_components=0"):
        SelfConditionedGAN(cluster_components=0, **SMALL)
    with pytest.raises(ValueError, match="cluster_images=5, num_clusters=20"):
        SelfConditionedGAN(cluster_images=5, **SMALL)
    with pytest.raises(ValueError, match="num_clusters=1"):
        SelfConditionedGAN(num_clusters=1, **SMALL)
