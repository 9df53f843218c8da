"""Top-k training (Sinha et al. 2020): G learns from the fakes D rates most real, k falling on a
schedule; the same on 1 device and 2 replicas."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_tf import ACGAN, CGAN, DCGAN, LAPGAN, MLPGAN, SNGAN, WGANGP, BigGAN


def _tiny_dcgan(**kwargs):
    gan = DCGAN(latent_dim=8, width=8, seed=0, **kwargs)
    gan.compile()
    return gan


def test_k_falls_by_the_decay_every_interval_down_to_the_share():
    gan = _tiny_dcgan(top_k=0.25, top_k_decay=0.5, top_k_interval=2)
    counts = {}
    for updates in range(8):
        gan.g_optimizer.iterations.assign(updates)
        counts[updates] = (int(gan.top_k_count(8)), int(gan.top_k_count(10)))
    # shares 1, 1, 0.5, 0.5, 0.25, 0.25, then 0.125 held at 0.25; k = ceil(share * batch)
    assert counts == {0: (8, 10), 1: (8, 10), 2: (4, 5), 3: (4, 5), 4: (2, 3), 5: (2, 3), 6: (2, 3), 7: (2, 3)}


def test_the_generator_loss_is_the_mean_of_the_k_smallest_and_only_they_get_gradient():
    gan = _tiny_dcgan(top_k=0.5, top_k_decay=0.5, top_k_interval=1)
    g_losses = tf.Variable([0.9, 0.1, 0.7, 0.3, 0.5, 0.2, 0.8, 0.6])
    gan.g_optimizer.iterations.assign(0)  # first update: the whole batch
    np.testing.assert_allclose(float(gan.average_generator_loss(g_losses)), np.mean(g_losses.numpy()), rtol=1e-6)
    gan.g_optimizer.iterations.assign(1)  # share 0.5: k = 4 of 8, the losses 0.1, 0.2, 0.3, 0.5
    with tf.GradientTape() as tape:
        loss = gan.average_generator_loss(g_losses)
    np.testing.assert_allclose(float(loss), (0.1 + 0.2 + 0.3 + 0.5) / 4, rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(loss, g_losses).numpy(), [0, 0.25, 0, 0.25, 0.25, 0.25, 0, 0])
    assert float(_tiny_dcgan().average_generator_loss(g_losses)) == pytest.approx(np.mean(g_losses.numpy()))


def _two_steps(model_class, **model_args):
    keras.utils.set_random_seed(0)  # the same initial weights
    small = {"width": 8} if model_class in (DCGAN, LAPGAN) else {}
    gan = model_class(latent_dim=8, seed=0, **small, **model_args)
    gan.compile(d_optimizer=keras.optimizers.SGD(0.01), g_optimizer=keras.optimizers.SGD(0.01))
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32)
    labels = rng.integers(0, 10, 8).astype(np.int32)
    for _ in range(2):
        gan.train_on_batch(images, labels)
    return gan


def _same(first, second):
    return all(np.array_equal(a, b) for a, b in zip(first.get_weights(), second.get_weights()))


@pytest.mark.parametrize("model_class", [MLPGAN, DCGAN, CGAN, ACGAN, WGANGP, SNGAN, BigGAN, LAPGAN])
def test_every_image_gan_learns_from_the_top_k_when_asked(model_class):
    """Keeping the whole batch (top_k=1) trains exactly as without top-k. With k at half the
    batch from the second G update on, the first update is unchanged (so is D, which only ever
    sees G after it), and the second one moves G elsewhere."""
    plain = _two_steps(model_class)
    assert _same(_two_steps(model_class, top_k=1.0).generator, plain.generator)
    halved = _two_steps(model_class, top_k=0.5, top_k_decay=0.5, top_k_interval=1)
    assert int(halved.top_k_count(8)) == 4
    assert _same(halved.discriminator, plain.discriminator)
    assert not _same(halved.generator, plain.generator)
    config = halved.get_config()
    assert (config["top_k"], config["top_k_decay"], config["top_k_interval"]) == (0.5, 0.5, 1)
    restored = model_class.from_config(config)
    assert (restored.top_k, restored.top_k_decay, restored.top_k_interval) == (0.5, 0.5, 1)


@pytest.mark.parametrize("kwargs", [{"top_k": 0.0}, {"top_k": 1.5}, {"top_k": 0.5, "top_k_decay": 0.0},
                                    {"top_k": 0.5, "top_k_decay": 1.5}, {"top_k": 0.5, "top_k_interval": 0}])
def test_bad_top_k_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match="top_k"):
        DCGAN(latent_dim=8, width=8, **kwargs)
