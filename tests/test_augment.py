"""The differentiable augmentation (gan_tf.nn.augment): each transform by hand, then the seeded,
differentiable whole."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_tf.nn import augment


def test_translate_moves_each_image_by_its_own_shift_and_fills_the_border():
    images = np.arange(1, 19, dtype=np.float32).reshape(2, 3, 3, 1)
    moved = augment.translate(images, tf.constant([1, 0]), tf.constant([0, -1]), fill=0.0).numpy()[..., 0]
    np.testing.assert_array_equal(moved[0], [[0, 0, 0], [1, 2, 3], [4, 5, 6]])  # one row down
    np.testing.assert_array_equal(moved[1], [[11, 12, 0], [14, 15, 0], [17, 18, 0]])  # one column left


def test_translate_fills_with_the_given_value():
    moved = augment.translate(np.ones((1, 2, 2, 1), np.float32), tf.constant([-1]), tf.constant([0]), fill=0.5)
    np.testing.assert_array_equal(moved.numpy()[0, :, :, 0], [[1, 1], [0.5, 0.5]])


def test_reflect_translate_mirrors_each_image_at_its_border():
    images = np.arange(1, 19, dtype=np.float32).reshape(2, 3, 3, 1)
    moved = augment.reflect_translate(images, tf.constant([1, 0]), tf.constant([0, -2])).numpy()[..., 0]
    # One row down: row 0 reads row -1, mirrored to row 1 (the edge row is not repeated).
    np.testing.assert_array_equal(moved[0], [[4, 5, 6], [1, 2, 3], [4, 5, 6]])
    # Two columns left: columns 0, 1, 2 read 2, 3, 4, mirrored to 2, 1, 0.
    np.testing.assert_array_equal(moved[1], [[12, 11, 10], [15, 14, 13], [18, 17, 16]])


def test_reflected_translation_adds_no_value_the_image_lacks():
    """Digits on black: constant padding uncovers grey strips, reflection only black."""
    digit = -np.ones((1, 8, 8, 1), np.float32)
    digit[0, 3:5, 3:5] = 1.0
    for shift in (-2, -1, 1, 2):
        moved = augment.reflect_translate(digit, tf.constant([shift]), tf.constant([-shift])).numpy()
        assert set(np.unique(moved)) == {-1.0, 1.0} and moved.sum() == digit.sum()
    assert 0.0 in augment.translate(digit, tf.constant([2]), tf.constant([0]), fill=0.0).numpy()
    seeded = augment.DiffAugment("translation", (-1.0, 1.0), keras.random.SeedGenerator(0), padding="reflect")
    assert set(np.unique(seeded(np.repeat(digit, 16, axis=0)).numpy())) == {-1.0, 1.0}
    with pytest.raises(ValueError, match="`augment_padding` must be one of \\['constant', 'reflect'\\]"):
        augment.DiffAugment("translation", (-1.0, 1.0), keras.random.SeedGenerator(0), padding="zeros")


def test_cut_out_sets_a_square_around_each_centre_clipped_at_the_border():
    images = np.ones((2, 4, 4, 1), np.float32)
    cut = augment.cut_out(images, tf.constant([1, 0]), tf.constant([1, 3]), tf.constant([2, 2]), fill=-1.0).numpy()
    expected_first = np.ones((4, 4))
    expected_first[0:2, 0:2] = -1.0
    expected_second = np.ones((4, 4))
    expected_second[0:1, 2:4] = -1.0  # rows -1..0 and columns 2..3, clipped to row 0
    np.testing.assert_array_equal(cut[0, :, :, 0], expected_first)
    np.testing.assert_array_equal(cut[1, :, :, 0], expected_second)


def test_colour_transforms_by_hand():
    pixel = np.array([[[[0.0, 0.5, 1.0]]]], np.float32)  # one RGB pixel, channel mean 0.5
    np.testing.assert_allclose(augment.adjust_brightness(pixel, 0.25), [[[[0.25, 0.75, 1.25]]]])
    np.testing.assert_allclose(augment.adjust_saturation(pixel, 0.0), [[[[0.5, 0.5, 0.5]]]])
    np.testing.assert_allclose(augment.adjust_saturation(pixel, 2.0), [[[[-0.5, 0.5, 1.5]]]])
    image = np.array([0.0, 1.0], np.float32).reshape(1, 1, 2, 1)  # image mean 0.5
    np.testing.assert_allclose(augment.adjust_contrast(image, 0.5).numpy().ravel(), [0.25, 0.75])


def test_policy_is_parsed_in_the_papers_order_and_checked():
    assert augment.parse_policy("cutout, color") == ("color", "cutout")
    assert augment.parse_policy(["translation"]) == ("translation",)
    assert augment.parse_policy(None) == () and augment.parse_policy("") == ()
    with pytest.raises(ValueError, match="Unknown augmentations \\['flip'\\]"):
        augment.parse_policy("color,flip")


def _augmenter(policy="color,translation,cutout", seed=0, value_range=(-1.0, 1.0)):
    return augment.DiffAugment(policy, value_range, keras.random.SeedGenerator(seed))


def test_diff_augment_is_seeded_per_example_and_differentiable():
    images = tf.constant(np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 3)).astype(np.float32))
    first, again = _augmenter()(images), _augmenter()(images)
    np.testing.assert_array_equal(first.numpy(), again.numpy())  # the same stream, the same draws
    augmenter = _augmenter()
    assert not np.allclose(augmenter(images).numpy(), augmenter(images).numpy())  # the stream moves on
    same_images = tf.repeat(images[:1], 8, axis=0)
    outputs = _augmenter()(same_images).numpy()
    assert not np.allclose(outputs[0], outputs[1])  # each example its own draws
    with tf.GradientTape() as tape:
        tape.watch(images)
        total = tf.reduce_sum(_augmenter()(images) ** 2)
    gradient = tape.gradient(total, images).numpy()
    assert gradient.shape == images.shape and np.count_nonzero(gradient) > images.shape.num_elements() // 4


def test_with_a_probability_each_transform_applies_to_that_share_of_examples():
    images = tf.fill([400, 8, 8, 1], 1.0)
    untouched = _augmenter("translation,cutout", value_range=(0.0, 1.0))(images, probability=0.0).numpy()
    np.testing.assert_array_equal(untouched, images.numpy())
    always = _augmenter("cutout", value_range=(0.0, 1.0))(images, probability=1.0).numpy()
    assert np.all((always == 0.5).any(axis=(1, 2, 3)))  # every image cut
    half = _augmenter("cutout", value_range=(0.0, 1.0))(images, probability=0.5).numpy()
    cut = (half == 0.5).any(axis=(1, 2, 3)).mean()
    assert 0.4 < cut < 0.6, cut  # 400 coin flips: 0.5 +- 0.025 (one standard deviation)
    with tf.GradientTape() as tape:
        variable = tf.Variable(images)
        total = tf.reduce_sum(_augmenter()(variable, probability=0.5) ** 2)
    assert np.count_nonzero(tape.gradient(total, variable).numpy()) > 0


def test_translation_and_cutout_keep_pixel_values_and_fill_with_the_middle_of_the_range():
    images = tf.fill([16, 8, 8, 1], 1.0)
    outputs = _augmenter("translation,cutout", value_range=(0.0, 1.0))(images).numpy()
    assert set(np.unique(outputs)) <= {0.5, 1.0}
    filled = (outputs == 0.5).mean(axis=(1, 2, 3))
    assert filled.max() > 0.25 and filled.min() > 0.0  # every cutout takes up to a quarter, plus shifts


# ------------------------------------------------------------------------- in the image GANs

from gan_tf import ACGAN, CGAN, DCGAN, LAPGAN, MLPGAN, SNGAN, WGANGP, BigGAN  # noqa: E402
from gan_tf.models import MODELS  # noqa: E402
from gan_tf.models.generative import constructor_arguments  # noqa: E402
from gan_tf.nn.losses import r1_penalty  # noqa: E402

POLICY = "color,translation,cutout"


def _batch(model_class, size=8):
    rng = np.random.default_rng(0)
    low, high = model_class.value_range
    images = rng.uniform(low, high, (size, 28, 28, 1)).astype(np.float32)
    return images, rng.integers(0, 10, size).astype(np.int32)


def _trained_discriminator(model_class, augment, steps=1, **model_args):
    keras.utils.set_random_seed(0)  # the same initial weights
    gan = model_class(latent_dim=8, seed=0, augment=augment, **({"width": 8} if model_class is DCGAN else {}), **model_args)
    gan.compile()
    images, labels = _batch(model_class)
    for _ in range(steps):
        gan.train_on_batch(images, labels)
    return gan


@pytest.mark.parametrize("model_class", [MLPGAN, DCGAN, CGAN, ACGAN, WGANGP, SNGAN, BigGAN])
def test_every_image_gan_shows_d_augmented_images_when_asked(model_class):
    plain = _trained_discriminator(model_class, None)
    augmented = _trained_discriminator(model_class, POLICY)
    assert augmented.augment == ("color", "translation", "cutout") and plain.augment == ()
    assert any(not np.allclose(a, b) for a, b in zip(plain.discriminator.get_weights(),
                                                    augmented.discriminator.get_weights()))
    assert all(np.all(np.isfinite(w)) for w in augmented.get_weights())
    # The setting is part of the config, and samples are not augmented.
    config = augmented.get_config()
    assert config["augment"] == ["color", "translation", "cutout"]
    assert type(augmented).from_config(config).augment == augmented.augment
    again = augmented.generate(4, seed=3) if not model_class.conditional else augmented.generate(labels=[0, 1, 2, 3], seed=3)
    np.testing.assert_array_equal(again, augmented.generate(4, seed=3) if not model_class.conditional
                                  else augmented.generate(labels=[0, 1, 2, 3], seed=3))


def test_every_gan_in_the_registry_either_applies_augment_or_refuses_it():
    for name, model_class in MODELS.items():
        if not issubclass(model_class, MLPGAN.__mro__[1]):  # the GAN base
            continue
        if model_class.applies_augment:
            assert "augment" in constructor_arguments(model_class), name
        else:
            assert "augment" not in constructor_arguments(model_class), name
    with pytest.raises(ValueError, match="LAPGAN does not apply `augment`"):
        LAPGAN(latent_dim=8, width=8, augment="color")


def test_g_learns_through_the_augmentation():
    """G's step goes through D's view of its images: with cutout alone, the gradient reaching
    the images is zero exactly on the pixels cut out, and flows everywhere else."""
    gan = DCGAN(latent_dim=8, width=8, seed=0, augment="cutout")
    fakes = tf.Variable(tf.ones([4, 28, 28, 1]))
    with tf.GradientTape() as tape:
        seen = gan.augment_images(fakes)
        loss = tf.reduce_sum(gan.discriminator(seen, training=False))
    gradient = tape.gradient(loss, fakes).numpy()
    cut = seen.numpy() == 0.0  # the fill: the middle of [-1, 1]
    assert 0 < cut.mean() <= 0.25
    assert np.all(gradient[cut] == 0.0)
    assert np.mean(gradient[~cut] != 0.0) > 0.9


@pytest.mark.parametrize("ada", [{}, {"ada_target": 0.6, "ada_interval": 1, "ada_images": 80},
                                 {"r1_weight": 1.0, "r1_interval": 2}])
def test_augmented_training_resumes_bit_exact_from_a_saved_model(tmp_path, ada):
    """The augmentation draws from the model's saved noise stream (and ADA's p and running sums
    are saved weights): two steps, or one step, a save and a load and one step, end with the
    same weights."""
    images, labels = _batch(DCGAN, 8)
    straight = _trained_discriminator(DCGAN, POLICY, steps=2, **ada)
    first = _trained_discriminator(DCGAN, POLICY, steps=1, **ada)
    first.save(tmp_path / "one_step.keras")
    resumed = keras.saving.load_model(tmp_path / "one_step.keras")
    resumed.train_on_batch(images, labels)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    if "ada_target" in ada:
        assert float(resumed.augment_probability) == float(straight.augment_probability)


def _set_real_sign(gan, sign):
    """Makes D's logit `sign * 100` for any image (its output layer's bias; a step moves it by
    about the learning rate), so r_t = sign exactly."""
    output = gan.discriminator.layers[-1]
    kernel, bias = output.get_weights()
    output.set_weights([np.zeros_like(kernel), np.full_like(bias, 100.0 * sign)])


def test_ada_moves_p_by_the_sign_of_ds_overfitting_every_interval():
    """Batch 8 and ada_images=80: each adjustment moves p by 8 images / 80 = 0.1 per D step of
    the interval, up while r_t = 1 > 0.6, down (to 0, no lower) while r_t = -1."""
    images, labels = _batch(DCGAN, 8)
    gan = DCGAN(latent_dim=8, width=8, seed=0, augment=POLICY, ada_target=0.6, ada_interval=2, ada_images=80)
    gan.compile()
    expected_p, seen = [0.0, 0.2, 0.2, 0.4, 0.4, 0.2, 0.2, 0.0, 0.0, 0.0], []
    for step in range(10):
        _set_real_sign(gan, 1 if step < 4 else -1)
        gan.reset_metrics()
        used = float(gan.augment_probability)
        logs = gan.train_on_batch(images, labels, return_dict=True)
        assert logs["d_real_sign"] == (1.0 if step < 4 else -1.0)
        assert logs["augment_p"] == pytest.approx(used)  # the p the step augmented with
        seen.append(float(gan.augment_probability))
    np.testing.assert_allclose(seen, expected_p, atol=1e-6)


def test_ada_settings_are_config_and_refused_where_they_cannot_work():
    gan = DCGAN(latent_dim=8, width=8, augment=POLICY, ada_target=0.6)
    config = gan.get_config()
    assert (config["ada_target"], config["ada_interval"], config["ada_images"]) == (0.6, 4, 50_000)
    assert DCGAN.from_config(config).ada_target == 0.6
    assert "augment_p" in [m.name for m in gan.metrics] and "augment_p" not in [m.name for m in DCGAN(latent_dim=8).metrics]
    with pytest.raises(ValueError, match="give `augment` too"):
        DCGAN(latent_dim=8, ada_target=0.6)
    with pytest.raises(ValueError, match="must be in \\(0, 1\\)"):
        DCGAN(latent_dim=8, augment=POLICY, ada_target=1.5)
    with pytest.raises(ValueError, match="WGANGP cannot adapt its augmentation: .*no fixed zero"):
        WGANGP(latent_dim=8, augment=POLICY, ada_target=0.6)
    assert "ada_target" not in constructor_arguments(WGANGP) and "ada_target" in constructor_arguments(BigGAN)


def test_the_discriminator_view_shows_the_augmentation_without_moving_the_training_stream():
    gan = DCGAN(latent_dim=8, width=8, seed=0, augment="translation,cutout")
    state = gan.seed_generator.state.numpy().copy()
    images = np.ones((16, 28, 28, 1), np.float32)
    view = gan.discriminator_view(images, seed=1234)
    np.testing.assert_array_equal(gan.seed_generator.state.numpy(), state)
    np.testing.assert_array_equal(view, gan.discriminator_view(images, seed=1234))  # the same each epoch
    assert view.shape == images.shape and set(np.unique(view)) == {0.0, 1.0}  # moved and cut: the fill is 0
    assert DCGAN(latent_dim=8, width=8).discriminator_view(images, seed=1234) is None


def test_the_translation_padding_is_config_and_reaches_what_d_sees():
    gan = DCGAN(latent_dim=8, width=8, seed=0, augment="translation", augment_padding="reflect")
    config = gan.get_config()
    assert config["augment_padding"] == "reflect" and DCGAN(latent_dim=8).get_config()["augment_padding"] == "constant"
    assert DCGAN.from_config(config).augmenter.padding == "reflect"
    digits = -np.ones((16, 28, 28, 1), np.float32)
    digits[:, 10:18, 12:16] = 1.0
    seen = gan.discriminator_view(digits, seed=1234)
    assert set(np.unique(seen)) == {-1.0, 1.0}  # mirrored black, no grey strips
    constant = DCGAN(latent_dim=8, width=8, seed=0, augment="translation").discriminator_view(digits, seed=1234)
    assert 0.0 in np.unique(constant)
    with pytest.raises(ValueError, match="`augment_padding` must be one of"):
        DCGAN(latent_dim=8, augment="translation", augment_padding="mirror")


# ------------------------------------------------------------------ lazy R1 in the image GANs


@pytest.mark.parametrize("model_class", [MLPGAN, DCGAN, CGAN, ACGAN, WGANGP, SNGAN, BigGAN])
def test_every_image_gan_adds_r1_to_ds_loss_when_asked(model_class):
    """The first D step (optimizer iteration 0) is due: the logged d_loss grows by the penalty."""
    off = _trained_discriminator(model_class, None, r1_weight=0.0)
    on = _trained_discriminator(model_class, None, r1_weight=100.0, r1_interval=4)
    off_loss, on_loss = float(off.d_loss_tracker.result()), float(on.d_loss_tracker.result())
    assert on_loss > off_loss + 1e-3, (on_loss, off_loss)
    assert any(not np.allclose(a, b) for a, b in zip(off.discriminator.get_weights(), on.discriminator.get_weights()))
    assert type(on).from_config(on.get_config()).r1_weight == 100.0


def test_r1_is_lazy_every_interval_scaled_by_it():
    gan = DCGAN(latent_dim=8, width=8, seed=0, r1_weight=10.0, r1_interval=4)
    gan.compile()
    images = tf.constant(_batch(DCGAN, 4)[0])
    discriminate = lambda x: gan.discriminator(x, training=False)  # noqa: E731
    by_hand = 0.5 * 10.0 * 4 * r1_penalty(discriminate, images).numpy()
    for iteration, due in ((0, True), (1, False), (3, False), (4, True), (9, False), (12, True)):
        gan.d_optimizer.iterations.assign(iteration)
        penalty = gan.lazy_r1_penalty(discriminate, images).numpy()
        np.testing.assert_allclose(penalty, by_hand if due else np.zeros(4), rtol=1e-5, err_msg=str(iteration))
    np.testing.assert_array_equal(DCGAN(latent_dim=8, width=8).lazy_r1_penalty(discriminate, images), np.zeros(4))
    with pytest.raises(ValueError, match="LAPGAN does not apply `r1_weight`"):
        LAPGAN(latent_dim=8, width=8, r1_weight=1.0)
    with pytest.raises(ValueError, match="`r1_weight` must be >= 0"):
        DCGAN(latent_dim=8, r1_weight=-1.0)


# ------------------------------------------- balanced consistency regularization in the image GANs


@pytest.mark.parametrize("model_class", [MLPGAN, DCGAN, CGAN, ACGAN, WGANGP, SNGAN, BigGAN])
def test_every_image_gan_adds_the_consistency_term_to_ds_loss_when_asked(model_class):
    off = _trained_discriminator(model_class, None)
    on = _trained_discriminator(model_class, None, consistency_weight=100.0)
    off_loss, on_loss = float(off.d_loss_tracker.result()), float(on.d_loss_tracker.result())
    assert on_loss > off_loss + 1e-3, (on_loss, off_loss)
    assert any(not np.allclose(a, b) for a, b in zip(off.discriminator.get_weights(), on.discriminator.get_weights()))
    restored = type(on).from_config(on.get_config())
    assert (restored.consistency_weight, restored.consistency_augment) == (100.0, ("translation",))


def test_the_consistency_term_compares_each_image_with_its_own_shifted_copy():
    """D reads the centre pixel of images holding one bright centre pixel: a copy shifted by
    (0, 0) scores the same (no penalty), any other shift scores 0 instead of 1 (penalty lambda),
    and the same on the fakes, whose pixel is -1."""
    images = np.zeros((512, 28, 28, 1), np.float32)
    images[:, 14, 14, 0] = 1.0
    centre = lambda x: x[:, 14:15, 14, 0]  # noqa: E731
    gan, twin = (DCGAN(latent_dim=8, width=8, seed=0, consistency_weight=10.0) for _ in range(2))
    penalty = gan.consistency_penalty(centre, images, centre(images), -images, centre(-images)).numpy()
    real_kept = centre(twin.consistency_transform(images)).numpy()[:, 0] == 1.0  # the same seeded draws
    fake_kept = centre(twin.consistency_transform(-images)).numpy()[:, 0] == -1.0
    np.testing.assert_array_equal(penalty, 10.0 * ((~real_kept).astype(float) + (~fake_kept).astype(float)))
    assert 0 < real_kept.sum() < 30 and not np.array_equal(real_kept, fake_kept)  # the shift (0, 0): 1 in 81
    np.testing.assert_array_equal(DCGAN(latent_dim=8, width=8).consistency_penalty(
        centre, images, centre(images), images, centre(images)), np.zeros(512))
    with pytest.raises(ValueError, match="LAPGAN does not apply `consistency_weight`"):
        LAPGAN(latent_dim=8, width=8, consistency_weight=1.0)
    with pytest.raises(ValueError, match="`consistency_weight` must be positive"):
        DCGAN(latent_dim=8, consistency_weight=0.0)
    with pytest.raises(ValueError, match="Unknown augmentations"):
        DCGAN(latent_dim=8, consistency_weight=1.0, consistency_augment="flip")
