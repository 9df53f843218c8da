import math

import numpy as np
import pytest

from gan_tf.nn import likelihoods

LEVELS = np.linspace(-1.0, 1.0, 256, dtype=np.float32)  # the 256 levels of 8-bit data in [-1, 1]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("mean, log_scale", [(0.0, 0.0), (0.3, -3.0), (-0.99, -5.0), (1.5, -1.0), (0.0, -9.0)])
def test_the_256_level_probabilities_of_a_pixel_sum_to_one(mean, log_scale):
    log_p = np.asarray(likelihoods.discretized_logistic_log_likelihood(
        LEVELS.reshape(256, 1), np.full((256, 1), mean, np.float32), np.full((256, 1), log_scale, np.float32)))
    np.testing.assert_allclose(np.exp(log_p).sum(), 1.0, rtol=2e-3)


def test_a_level_gets_the_logistic_mass_of_its_bin():
    # mu = 0, s = 0.5; level 128 is x = 1/255, its bin [0, 2/255]: sigmoid(4/255) - sigmoid(0).
    x, half_bin = LEVELS[128], 1.0 / 255.0
    expected = _sigmoid((x + half_bin) / 0.5) - _sigmoid((x - half_bin) / 0.5)
    got = likelihoods.discretized_logistic_log_likelihood(np.array([[x]]), np.zeros((1, 1)), np.full((1, 1), math.log(0.5)))
    np.testing.assert_allclose(np.asarray(got), [math.log(expected)], rtol=1e-4)
    # The lowest level takes all the mass below its upper edge, the highest all above its lower edge.
    lowest = likelihoods.discretized_logistic_log_likelihood(np.array([[-1.0]]), np.zeros((1, 1)), np.zeros((1, 1)))
    highest = likelihoods.discretized_logistic_log_likelihood(np.array([[1.0]]), np.zeros((1, 1)), np.zeros((1, 1)))
    np.testing.assert_allclose(np.asarray(lowest), [math.log(_sigmoid(-1.0 + half_bin))], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(highest), [math.log(1.0 - _sigmoid(1.0 - half_bin))], rtol=1e-5)


def test_log_likelihoods_sum_over_the_pixels_of_each_image():
    images = np.array([[[0.0], [1.0]], [[-1.0], [-1.0]]], np.float32).reshape(2, 1, 2, 1)
    per_pixel = [np.asarray(likelihoods.discretized_logistic_log_likelihood(
        images[:, :, k:k + 1], np.zeros((2, 1, 1, 1)), np.zeros((2, 1, 1, 1)))) for k in range(2)]
    total = np.asarray(likelihoods.discretized_logistic_log_likelihood(images, np.zeros_like(images), np.zeros_like(images)))
    np.testing.assert_allclose(total, per_pixel[0] + per_pixel[1], rtol=1e-6)


def test_gaussian_kl_against_the_closed_form_by_hand():
    # N((1, 2), diag(1, 4)) to N(0, I): 0.5 * [(1 + 1 - 1 - 0) + (4 + 4 - 1 - log 4)] = 4 - log 2.
    kl = likelihoods.gaussian_kl_divergence(np.array([[1.0, 2.0]]), np.array([[0.0, math.log(4.0)]]))
    np.testing.assert_allclose(np.asarray(kl), [4.0 - math.log(2.0)], rtol=1e-6)
    assert float(np.asarray(likelihoods.gaussian_kl_divergence(np.zeros((1, 3)), np.zeros((1, 3))))[0]) == 0.0


def test_gaussian_log_density_by_hand():
    # log N(1; 0, 1) = -0.5 (1 + log 2 pi); log N((0, 2); (0, 0), diag(1, 4)) = -log 2 pi - 0.5 log 4 - 0.5.
    np.testing.assert_allclose(np.asarray(likelihoods.gaussian_log_density(np.array([[1.0]]))),
                               [-0.5 * (1.0 + math.log(2 * math.pi))], rtol=1e-6)
    got = likelihoods.gaussian_log_density(np.array([[0.0, 2.0]]), np.zeros((1, 2)), np.array([[0.0, math.log(4.0)]]))
    np.testing.assert_allclose(np.asarray(got), [-math.log(2 * math.pi) - 0.5 * math.log(4.0) - 0.5], rtol=1e-6)


def test_the_importance_weighted_bound_is_the_log_of_the_mean_weight():
    # Weights 1 and 3: log((1 + 3) / 2) = log 2; one sample: its log weight (the ELBO estimate).
    bound = likelihoods.importance_weighted_bound(np.array([[0.0, math.log(3.0)], [-1.0, -1.0]]))
    np.testing.assert_allclose(np.asarray(bound), [math.log(2.0), -1.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(likelihoods.importance_weighted_bound(np.array([[-7.5]]))), [-7.5])


def test_bits_per_dim_is_nats_over_dimensions_and_ln_2():
    np.testing.assert_allclose(float(likelihoods.bits_per_dim(-784 * math.log(2.0), 784)), 1.0)
    # A uniform model of 8-bit data: 8 bits per dimension.
    np.testing.assert_allclose(float(likelihoods.bits_per_dim(-784 * math.log(256.0), 784)), 8.0)
