import numpy as np
import pytest

from gan_tf.nn import losses


def _log_sigmoid(x):
    return -np.log1p(np.exp(-x))


REAL = np.array([[2.0], [-1.0], [0.5]], dtype="float32")
FAKE = np.array([[-3.0], [0.0], [1.5]], dtype="float32")


def test_discriminator_loss_applies_one_sided_label_smoothing():
    expected = -(0.9 * _log_sigmoid(REAL) + 0.1 * _log_sigmoid(-REAL)) - _log_sigmoid(-FAKE)
    got = np.asarray(losses.minimax_discriminator_loss(REAL, FAKE, real_label=0.9))
    np.testing.assert_allclose(got, expected[:, 0], rtol=1e-6)


def test_discriminator_loss_without_smoothing_is_the_original_value():
    expected = -_log_sigmoid(REAL) - _log_sigmoid(-FAKE)
    got = np.asarray(losses.minimax_discriminator_loss(REAL, FAKE, real_label=1.0))
    np.testing.assert_allclose(got, expected[:, 0], rtol=1e-6)


def test_generator_loss_is_non_saturating_with_targets_one():
    got = np.asarray(losses.minimax_generator_loss(FAKE))
    np.testing.assert_allclose(got, -_log_sigmoid(FAKE)[:, 0], rtol=1e-6)


def test_mismatched_label_loss_rejects_wrong_pairs_with_target_zero():
    # D(x, y') = 1/2 costs log 2; D(x, y') = 3/4 (logit log 3) costs -log(1/4) = log 4.
    logits = np.array([[0.0], [np.log(3.0)], [-80.0]], dtype="float32")
    got = np.asarray(losses.mismatched_label_discriminator_loss(logits))
    np.testing.assert_allclose(got, [np.log(2.0), np.log(4.0), 0.0], rtol=1e-6, atol=1e-30)


def test_at_the_optimum_d_loss_is_log_4():
    # D = 1/2 everywhere (logit 0): -log(1/2) - log(1/2) = log 4 (Goodfellow et al. 2014).
    zeros = np.zeros((4, 1), dtype="float32")
    np.testing.assert_allclose(losses.minimax_discriminator_loss(zeros, zeros, 1.0), np.log(4.0), rtol=1e-6)


def test_losses_are_per_example_for_patch_discriminators():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(2, 5, 4, 4, 1)).astype("float32")
    d_loss = np.asarray(losses.minimax_discriminator_loss(real, fake, 0.9))
    g_loss = np.asarray(losses.minimax_generator_loss(fake))
    assert d_loss.shape == g_loss.shape == (5,)
    expected_g = (-_log_sigmoid(fake)).reshape(5, -1).mean(axis=1)
    np.testing.assert_allclose(g_loss, expected_g, rtol=1e-5)


@pytest.mark.parametrize("logit", [-80.0, 80.0])
def test_losses_stay_finite_for_extreme_logits(logit):
    x = np.full((2, 1), logit, dtype="float32")
    assert np.all(np.isfinite(losses.minimax_discriminator_loss(x, x, 0.9)))
    assert np.all(np.isfinite(losses.minimax_generator_loss(x)))


# --------------------------------------------------------------- image-to-image losses


def test_least_squares_discriminator_loss_by_hand():
    real = np.array([[1.0, 0.5], [0.0, 2.0]], np.float32)  # two examples, two patches each
    fake = np.array([[0.0, -1.0], [0.5, 0.5]], np.float32)
    # example 0: mean((1-0.9)^2, (0.5-0.9)^2) + mean(0^2, 1^2) = (0.01 + 0.16)/2 + 0.5 = 0.585
    # example 1: mean(0.81, 1.21) + mean(0.25, 0.25) = 1.01 + 0.25 = 1.26
    got = losses.least_squares_discriminator_loss(real, fake, real_label=0.9)
    np.testing.assert_allclose(np.asarray(got), [0.585, 1.26], rtol=1e-6)


def test_least_squares_generator_loss_by_hand():
    fake = np.array([[1.0, 0.0], [3.0, -1.0]], np.float32)
    np.testing.assert_allclose(np.asarray(losses.least_squares_generator_loss(fake)), [0.5, 4.0], rtol=1e-6)


def test_l1_cycle_and_identity_losses_by_hand():
    images = np.array([[[[0.0], [1.0]]], [[[-1.0], [0.5]]]], np.float32)  # [2, 1, 2, 1]
    others = np.array([[[[0.5], [0.0]]], [[[-1.0], [-0.5]]]], np.float32)
    # example 0: (0.5 + 1.0) / 2 = 0.75; example 1: (0 + 1.0) / 2 = 0.5
    for loss in (losses.l1_loss(others, images), losses.cycle_consistency_loss(images, others),
                 losses.identity_loss(images, others)):
        np.testing.assert_allclose(np.asarray(loss), [0.75, 0.5], rtol=1e-6)


def test_content_loss_by_hand():
    fake = np.array([[[1.0, 2.0]], [[0.0, 0.0]]], np.float32)  # two examples' [1, 2] feature maps
    real = np.array([[[1.0, 0.0]], [[3.0, -1.0]]], np.float32)
    # example 0: (0 + 4) / 2 = 2; example 1: (9 + 1) / 2 = 5
    np.testing.assert_allclose(np.asarray(losses.content_loss(fake, real)), [2.0, 5.0], rtol=1e-6)


def test_r1_penalty_of_a_linear_and_a_quadratic_d_by_hand():
    import tensorflow as tf

    # D(x) = <w, x>: the gradient is w at every image, so the penalty is ||w||^2 = 1 + 4 + 0 + 9.
    weights = tf.constant([1.0, -2.0, 0.0, 3.0], shape=(1, 2, 2, 1))
    images = tf.constant(np.random.default_rng(0).normal(size=(3, 2, 2, 1)), tf.float32)
    linear = losses.r1_penalty(lambda x: tf.reduce_sum(x * weights, axis=[1, 2, 3])[:, None], images)
    np.testing.assert_allclose(linear, [14.0, 14.0, 14.0], rtol=1e-6)
    # D(x) = ||x||^2 / 2 has gradient x: the penalty is each image's own ||x||^2; a patch D with
    # two outputs per image (both the same) doubles the gradient of their sum: 4 ||x||^2.
    quadratic = losses.r1_penalty(lambda x: 0.5 * tf.reduce_sum(x**2, axis=[1, 2, 3])[:, None], images)
    np.testing.assert_allclose(quadratic, np.sum(images.numpy() ** 2, axis=(1, 2, 3)), rtol=1e-5)
    patches = losses.r1_penalty(lambda x: tf.repeat(0.5 * tf.reduce_sum(x**2, axis=[1, 2, 3])[:, None], 2, axis=1), images)
    np.testing.assert_allclose(patches, 4 * np.sum(images.numpy() ** 2, axis=(1, 2, 3)), rtol=1e-5)
    # In a graph (as train_step runs it, and inside the lazy penalty's tf.cond branch) the same.
    in_graph = tf.function(lambda x: tf.cond(tf.constant(True), lambda: losses.r1_penalty(
        lambda y: 0.5 * tf.reduce_sum(y**2, axis=[1, 2, 3])[:, None], x), lambda: tf.zeros([3])))
    np.testing.assert_allclose(in_graph(images), quadratic, rtol=1e-6)


def test_smallest_k_mask_keeps_the_k_smallest_of_the_whole_population_by_hand():
    population = np.array([0.7, 0.2, 0.9, 0.4, 0.1, 0.5], np.float32)
    # The 3 smallest are 0.1, 0.2 and 0.4: each replica, holding half, keeps its own of them.
    np.testing.assert_array_equal(losses.smallest_k_mask(population[:3], population, 3), [0, 1, 0])
    np.testing.assert_array_equal(losses.smallest_k_mask(population[3:], population, 3), [1, 1, 0])
    np.testing.assert_array_equal(losses.smallest_k_mask(population, population, 1), [0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(losses.smallest_k_mask(population, population, 6), np.ones(6))


def test_consistency_loss_by_hand():
    logits = np.array([[1.0, 2.0], [0.0, -1.0]], np.float32)  # two examples, two patches each
    moved = np.array([[1.0, 0.0], [3.0, -1.0]], np.float32)
    # example 0: mean(0^2, 2^2) = 2; example 1: mean(3^2, 0^2) = 4.5
    np.testing.assert_allclose(np.asarray(losses.consistency_loss(logits, moved)), [2.0, 4.5], rtol=1e-6)
