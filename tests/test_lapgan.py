"""LAPGAN: the pyramid by hand, levels trained independently on the real pyramid, the composed
sampler, the per-level preview, the class-conditional variant, and the 28x28 export."""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from conftest import striped_digits, tiny_batches
from gan_tf.nn import pyramid
from gan_tf.data import DatasetInfo
from gan_tf.serving.export import export_generator
from gan_tf.models import LAPGAN
from gan_tf.models.lapgan import split_noise

TINY = dict(latent_dim=8, width=4, seed=0)
THREE_LEVELS = dict(TINY, levels=3)  # 7 -> 14 -> 28: a pyramid with a middle level


def test_downsample_and_upsample_by_hand():
    block = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32).reshape(1, 2, 2, 1)
    np.testing.assert_allclose(ops.convert_to_numpy(pyramid.downsample(block)), [[[[2.5]]]])
    constant = np.full((1, 3, 3, 2), 0.25, np.float32)
    np.testing.assert_allclose(ops.convert_to_numpy(pyramid.upsample(constant)), np.full((1, 6, 6, 2), 0.25), atol=1e-7)
    # Bilinear with half-pixel centres: [0, 1] -> [0, 0.25, 0.75, 1] (edges clamp).
    ramp = np.array([0.0, 1.0], np.float32).reshape(1, 1, 2, 1)
    np.testing.assert_allclose(ops.convert_to_numpy(pyramid.upsample(ramp))[0, 0, :, 0], [0, 0.25, 0.75, 1], atol=1e-7)


def test_a_constant_image_has_no_residuals():
    coarsest, residuals = pyramid.laplacian_pyramid(np.full((2, 28, 28, 1), -0.5, np.float32), 3)
    assert coarsest.shape == (2, 7, 7, 1) and [r.shape for r in residuals] == [(2, 14, 14, 1), (2, 28, 28, 1)]
    np.testing.assert_allclose(ops.convert_to_numpy(coarsest), -0.5)
    for residual in residuals:
        np.testing.assert_allclose(ops.convert_to_numpy(residual), 0.0, atol=1e-7)


@pytest.mark.parametrize("shape, levels", [((28, 28, 1), 3), ((32, 32, 3), 3), ((64, 48, 3), 4)])
def test_the_pyramid_reconstructs_the_image_exactly(shape, levels):
    images = np.random.default_rng(0).uniform(-1, 1, (3,) + shape).astype(np.float32)
    coarsest, residuals = pyramid.laplacian_pyramid(images, levels)
    assert coarsest.shape[1:3] == (shape[0] >> (levels - 1), shape[1] >> (levels - 1))
    rebuilt = ops.convert_to_numpy(pyramid.reconstruct(coarsest, residuals))
    np.testing.assert_allclose(rebuilt, images, atol=1e-6)
    # The residuals carry detail: dropping the finest loses it.
    blurred = ops.convert_to_numpy(pyramid.reconstruct(coarsest, residuals[:-1]))
    assert np.abs(ops.convert_to_numpy(pyramid.upsample(blurred)) - images).mean() > 0.1


def test_default_levels_follow_the_image_size():
    assert pyramid.default_levels((28, 28, 1)) == 2  # 14 -> 28
    assert pyramid.default_levels((32, 32, 3)) == 2  # 16 -> 32
    assert pyramid.default_levels((64, 64, 3)) == 3  # 16 -> 32 -> 64
    assert pyramid.default_levels((128, 96, 3)) == 4  # 16 x 12 -> ... -> 128 x 96
    assert pyramid.default_levels((30, 30, 1)) == 2  # 15 is odd
    assert pyramid.default_levels((12, 12, 1)) == 1  # already at most 16
    assert pyramid.level_shapes((28, 28, 1), 3) == [(7, 7, 1), (14, 14, 1), (28, 28, 1)]
    with pytest.raises(ValueError, match="divisible by 8"):
        pyramid.check_levels((28, 28, 1), 4)
    with pytest.raises(ValueError, match="divisible by 8"):
        LAPGAN(image_shape=(28, 28, 1), levels=4)
    assert LAPGAN(image_shape=(64, 64, 3), **TINY).levels == 3


@pytest.mark.parametrize("size, levels", [(32, 2), (64, 3), (128, 4)])
def test_scaled_pyramids_make_and_judge_images_of_the_size(size, levels):
    gan = LAPGAN(image_shape=(size, size, 3), **TINY)
    assert gan.levels == levels and gan.level_shapes[0] == (16, 16, 3)
    images = gan.generate(2, seed=0)
    assert images.shape == (2, size, size, 3)
    pyramid_images = pyramid.gaussian_pyramid(images, levels)
    upsampled = [pyramid.upsample(image) for image in pyramid_images[:-1]]
    residuals = [image - coarse for image, coarse in zip(pyramid_images[1:], upsampled)]
    logits = gan.judge_levels([pyramid_images[0]] + residuals, upsampled, None)
    assert [tuple(level.shape) for level in logits] == [(2, 1)] * levels


def test_noise_splits_into_z_and_one_plane_per_finer_level():
    gan = LAPGAN(image_shape=(28, 28, 1), **THREE_LEVELS)
    assert gan.latent_dim == 8 + 14 * 14 + 28 * 28
    noise = np.arange(2 * gan.latent_dim, dtype=np.float32).reshape(2, -1)
    z, plane_1, plane_2 = (ops.convert_to_numpy(part) for part in split_noise(tf.constant(noise), 8, gan.level_shapes))
    np.testing.assert_array_equal(z, noise[:, :8])
    np.testing.assert_array_equal(plane_1[1, 0, :3, 0], noise[1, 8:11])
    np.testing.assert_array_equal(plane_2.reshape(2, -1), noise[:, 8 + 196:])


def _level_losses(gan, images):
    """Each level's G loss on one batch, with the tape that recorded them."""
    upsampled = [pyramid.upsample(image) for image in pyramid.gaussian_pyramid(images, gan.levels)[:-1]]
    noise = gan.draw_noise(len(images), seed=3)
    with tf.GradientTape(persistent=True) as tape:
        fakes = gan.generate_levels(noise, upsampled, None, training=True)
        logits = gan.judge_levels(fakes, upsampled, None)
        level_losses = [ops.mean(-tf.math.log_sigmoid(level_logits)) for level_logits in logits]
    return tape, level_losses


def test_each_level_trains_on_the_real_pyramid_alone():
    gan = LAPGAN(image_shape=(28, 28, 1), **THREE_LEVELS)
    images = np.random.default_rng(1).uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32)
    tape, level_losses = _level_losses(gan, images)
    generators = gan.level_generators
    for k, loss in enumerate(level_losses):
        for j, generator in enumerate(generators):
            gradients = tape.gradient(loss, generator.trainable_variables)
            moved = any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients)
            assert moved == (j == k), (k, j)  # level k's loss reaches only G_k


def test_training_moves_every_level_and_logs_each():
    gan = LAPGAN(image_shape=(28, 28, 1), **THREE_LEVELS)
    gan.compile()
    before = [np.array(v) for v in gan.generator.trainable_variables + gan.discriminator.trainable_variables]
    history = gan.fit(tiny_batches(), epochs=1, verbose=0).history
    after = [np.array(v) for v in gan.generator.trainable_variables + gan.discriminator.trainable_variables]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after) if a.ndim > 1)  # every kernel
    for k in range(3):
        assert np.isfinite(history[f"d_loss_{k}"][0]) and np.isfinite(history[f"g_loss_{k}"][0])
    np.testing.assert_allclose(history["d_loss"][0], sum(history[f"d_loss_{k}"][0] for k in range(3)), rtol=1e-5)
    assert int(gan.g_optimizer.iterations) == 2 and int(gan.d_optimizer.iterations) == 2


def test_sampling_composes_the_levels():
    gan = LAPGAN(image_shape=(28, 28, 1), **THREE_LEVELS)
    levels = gan.sample_levels(3, seed=5)
    assert [level.shape for level in levels] == [(3, 7, 7, 1), (3, 14, 14, 1), (3, 28, 28, 1)]
    np.testing.assert_allclose(levels[-1], gan.generate(3, seed=5), atol=1e-6)
    # I_2 = clip(u(I_1) + G_2(u(I_1), plane_2)), with plane_2 the last 28 x 28 values of z.
    noise = gan.draw_noise(3, seed=5)
    plane = ops.reshape(noise[:, -28 * 28:], (3, 28, 28, 1))
    upsampled = pyramid.upsample(tf.constant(levels[1]))
    residual = gan.level_generators[2]([upsampled, plane], training=False)
    np.testing.assert_allclose(levels[2], np.clip(ops.convert_to_numpy(upsampled + residual), -1, 1), atol=1e-5)
    assert levels[-1].min() >= -1 and levels[-1].max() <= 1


def test_preview_shows_each_samples_levels_side_by_side():
    gan = LAPGAN(image_shape=(28, 28, 1), **THREE_LEVELS)
    grid = gan.preview(rows=2, columns=7, seed=9)  # 2 samples of 3 levels per row, 1 blank cell
    assert grid.shape == (14, 28, 28, 1)
    levels = gan.sample_levels(4, seed=9)
    np.testing.assert_allclose(grid[0], np.repeat(np.repeat(levels[0][0], 4, axis=0), 4, axis=1), atol=1e-6)
    np.testing.assert_allclose(grid[1], np.repeat(np.repeat(levels[1][0], 2, axis=0), 2, axis=1), atol=1e-6)
    np.testing.assert_allclose(grid[2], levels[2][0], atol=1e-6)
    np.testing.assert_allclose(grid[5], levels[2][1], atol=1e-6)
    np.testing.assert_allclose(grid[6], -1.0)  # the blank cell
    np.testing.assert_allclose(grid[7 + 2], levels[2][2], atol=1e-6)  # row 1 starts at sample 2


def test_conditional_lapgan_draws_the_class_asked_for():
    gan = LAPGAN(image_shape=(28, 28, 1), levels=3, conditional=True, num_classes=4, latent_dim=8, width=8, dropout=0.0,
                 seed=0)
    assert gan.needs_labels and LAPGAN.from_config(gan.get_config()).conditional
    gan.compile()
    gan.fit(striped_digits().repeat(), epochs=1, steps_per_epoch=300, verbose=0)
    labels = np.repeat(np.arange(4), 16)
    images = gan.sample(64, seed=1, conditions={"labels": labels}).images
    band_means = images[..., 0].reshape(64, 4, 7, 28).mean(axis=(2, 3))  # the mean of each class's band
    assert np.mean(np.argmax(band_means, axis=1) == labels) >= 0.9
    grid = gan.preview(rows=4, columns=3, seed=0)
    assert np.argmax(grid[3 * 2 + 2, ..., 0].reshape(4, 7, 28).mean(axis=(1, 2))) == 2  # row 2: class 2


def test_conditional_needs_labels_and_unconditional_refuses_them():
    unlabelled = DatasetInfo(image_shape=(28, 28, 1), num_classes=0, class_names=())
    with pytest.raises(ValueError, match="conditional=true needs labelled data"):
        LAPGAN.from_data(unlabelled, conditional=True)
    assert LAPGAN.from_data(unlabelled, width=4).conditional is False
    with pytest.raises(ValueError, match="not conditional"):
        LAPGAN(image_shape=(28, 28, 1), **TINY).generate(labels=[1, 2])


def test_export_is_a_28x28_sampler_equal_to_the_keras_model(tmp_path):
    gan = LAPGAN(image_shape=(28, 28, 1), **TINY)
    path = export_generator(gan, str(tmp_path / "lapgan"))
    signatures = tf.saved_model.load(path).signatures
    seeded = signatures["sample_seeded"](num_samples=tf.constant(3), seed=tf.constant(4, tf.int64))
    assert seeded["images"].shape == (3, 28, 28, 1) and seeded["images_uint8"].dtype == tf.uint8
    noise = gan.draw_noise(2, seed=2)
    served = signatures["serving_default"](z=tf.constant(noise))["images"].numpy()
    np.testing.assert_allclose(served, ops.convert_to_numpy(gan(noise)), atol=1e-5)
    metadata = signatures["metadata"]()
    assert int(metadata["latent_dim"]) == gan.latent_dim
    assert '"pyramid_levels": [[14, 14, 1], [28, 28, 1]]' in metadata["metadata_json"].numpy().decode()
    with pytest.raises(tf.errors.InvalidArgumentError, match="z must have shape"):
        signatures["serving_default"](z=tf.zeros([1, 8]))


def test_train_runs_a_conditional_lapgan_end_to_end(tmp_path):
    from gan_tf.training import TrainConfig, train

    config = TrainConfig(model="lapgan", epochs=1, steps_per_epoch=2, batch_size=16, latent_dim=9, eval_every=0,
                         model_args={"conditional": True, "width": 4}, workdir=str(tmp_path / "run"),
                         export_dir=str(tmp_path / "export"), verbose=0)
    result = train(config)
    gan = result.model
    assert gan.conditional and gan.levels == 2 and int(gan.g_optimizer.iterations) == 2  # 14 -> 28 by default
    assert {"d_loss_0", "d_loss_1", "g_loss_1"} <= set(result.history)
    assert (tmp_path / "run" / "samples" / "epoch_0001.png").exists()
    signature = tf.saved_model.load(result.export_path).signatures["sample_seeded"]
    served = signature(num_samples=tf.constant(2), seed=tf.constant(1, tf.int64), labels=tf.constant([3, 5]))
    assert served["images"].shape == (2, 28, 28, 1)


def test_samples_levels_and_previews_come_from_the_average_of_every_level():
    from gan_tf.models.generative import check_model_args

    gan = LAPGAN(image_shape=(28, 28, 1), **THREE_LEVELS)
    assert gan.ema_decay == 0.999 and gan.ema_generator is not None
    gan.ema_generator.set_weights([0.5 * w for w in gan.generator.get_weights()])  # an average unlike G
    noise = gan.draw_noise(3, seed=5)
    averaged = ops.convert_to_numpy(gan.ema_generator(noise, training=False))
    assert np.abs(averaged - ops.convert_to_numpy(gan.generator(noise, training=False))).max() > 1e-2
    np.testing.assert_allclose(gan.generate(3, seed=5), averaged, atol=1e-6)
    levels = gan.sample_levels(3, seed=5)
    np.testing.assert_allclose(levels[-1], averaged, atol=1e-6)
    assert gan.sampling_level_generators[0] is gan.ema_generator.get_layer("coarse_generator")
    coarse = gan.sampling_level_generators[0](noise[:, :8], training=False)
    np.testing.assert_allclose(levels[0], ops.convert_to_numpy(coarse), atol=1e-6)  # level 0 of the average
    np.testing.assert_allclose(gan.preview(rows=1, columns=3, seed=5)[2], levels[-1][0], atol=1e-6)
    raw = LAPGAN(image_shape=(28, 28, 1), sample_from_average=False, **THREE_LEVELS)
    raw.ema_generator.set_weights([0.5 * w for w in raw.generator.get_weights()])
    np.testing.assert_allclose(raw.sample_levels(3, seed=5)[-1], ops.convert_to_numpy(raw.generator(noise)), atol=1e-6)
    # A config saved before LAPGAN kept an average (no ema_decay key) loads without one.
    config = gan.get_config()
    assert LAPGAN.from_config(config).ema_decay == 0.999
    del config["ema_decay"]
    assert LAPGAN.from_config(config).ema_generator is None
    check_model_args("lapgan", LAPGAN, {"levels": 2, "conditional": True, "mismatch_weight": 0.5, "ema_decay": 0.99})