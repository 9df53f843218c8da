"""SN-GAN: a discriminator with spectrally normalized layers, trained with the hinge loss.

Reference:
    Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral Normalization for Generative Adversarial
    Networks", https://arxiv.org/abs/1802.05957
"""

import keras
import tensorflow as tf
from keras import ops

from gan_tf.models.gan import GAN
from gan_tf.nn import losses
from gan_tf.nn.layers import SelfAttention2D, SpectralNormalization, spectrally_normalized
from gan_tf.nn.networks import check_image_shape, check_width, dcgan_generator, discriminator_features


def self_attention(x, side):
    """SAGAN's attention block (spectrally normalized), placed by `gan_tf.nn.networks`."""
    return SelfAttention2D(spectral_norm=True, name="self_attention")(x)


def sngan_discriminator(image_shape, self_attention_block=False, width=64):
    """DCGAN's discriminator with every layer spectrally normalized and no dropout.

    SN Conv(w, 5, s2) -> LeakyReLU(0.1) -> SN Conv(2w, 5, s2) -> ... (one convolution per
    up-sampling of the generator, `gan_tf.nn.networks`) -> SN Dense(1) score. With
    `self_attention_block`, SAGAN's block goes on the map `gan_tf.nn.networks.attention_side`
    names (H/2 at 28x28). The score layer is float32 under any mixed policy.
    """
    images = keras.Input(image_shape, name="images")
    features = discriminator_features(
        images,
        dropout=0.0,
        width=width,
        wrap=spectrally_normalized,
        activation=lambda: keras.layers.LeakyReLU(0.1),
        attention=self_attention if self_attention_block else None,
    )
    score = SpectralNormalization(keras.layers.Dense(1, dtype="float32"), dtype="float32", name="score")(features)
    return keras.Model(images, score, name="discriminator")


@keras.saving.register_keras_serializable(package="gan_tf")
class SNGAN(GAN):
    """SN-GAN: DCGAN's generator against a spectrally normalized DCGAN discriminator, hinge loss.

    Spectral normalization divides each of D's weight matrices by its largest singular value
    (estimated by one power-iteration step per training call), which bounds D's Lipschitz
    constant without the cost of a gradient penalty. D minimises the hinge loss
    `max(0, 1 - D(x)) + max(0, 1 + D(G(z)))`, G minimises `-D(G(z))`. Trackers: `d_loss`,
    `g_loss`, and D's mean scores `real_score` and `fake_score` (unbounded, not probabilities).

    The networks are DCGAN's, so that the comparison with DCGAN isolates what SN-GAN changes,
    and so are the batch size and learning rate: batches of 32 and Adam(8e-4, beta_1=0.5,
    beta_2=0.999) with one D step per G step (the paper's Table 1 setting with DCGAN's rate),
    chosen by measurement (`bench/quality.py --epochs=20`, mnist_5k; docs/results/gans.md,
    "Spectral normalization at the quickstart budget"): FID 41.5 and 40.4 (seeds 0 and 1)
    against 89.3 with the paper's batch 64 and Adam(2e-4) in the same 20 epochs.

    Args:
        image_shape: `(H, W, C)`, H and W divisible by 4.
        latent_dim: size of z.
        width: channel unit of both networks (see `DCGAN`).
        d_steps: discriminator updates per generator update.
        noise, seed, **kwargs: see `GAN`.

    Example:
        >>> gan = SNGAN(image_shape=(28, 28, 1), seed=0)
        >>> gan.compile()
        >>> gan.fit(load_dataset("fashion_mnist", SNGAN.default_batch_size), epochs=20)

    Reference:
        Miyato et al. 2018, "Spectral Normalization for Generative Adversarial Networks",
        https://arxiv.org/abs/1802.05957
    """

    fixed_arguments = ("real_label",)  # no targets: the hinge loss
    default_batch_size = 32

    def __init__(self, image_shape=(28, 28, 1), latent_dim=100, width=64, d_steps=1, noise="gaussian", seed=None, **kwargs):
        self.image_shape = check_image_shape(image_shape)
        self.width = check_width(width)
        generator, discriminator = self.build_networks(int(latent_dim), self.image_shape, self.width)
        super().__init__(
            generator=generator,
            discriminator=discriminator,
            latent_dim=latent_dim,
            noise=noise,
            real_label=1.0,  # unused: the hinge loss has no targets
            d_steps=d_steps,
            seed=seed,
            **kwargs,
        )
        self.real_score_tracker = keras.metrics.Mean(name="real_score")
        self.fake_score_tracker = keras.metrics.Mean(name="fake_score")

    @staticmethod
    def build_networks(latent_dim, image_shape, width=64):
        """Returns `(generator, discriminator)`."""
        return dcgan_generator(latent_dim, image_shape, width), sngan_discriminator(image_shape, width=width)

    def default_optimizers(self):
        """Adam(8e-4, beta_1=0.5, beta_2=0.999) for both: Miyato et al.'s Table 1 setting at
        DCGAN's default rate, four times the paper's 2e-4 (chosen with batch 32: see above)."""
        return {
            "discriminator": keras.optimizers.Adam(8e-4, beta_1=0.5, beta_2=0.999, name="d_adam"),
            "generator": keras.optimizers.Adam(8e-4, beta_1=0.5, beta_2=0.999, name="g_adam"),
        }

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.real_score_tracker, self.fake_score_tracker] + self.ada_trackers()

    def train_step(self, data):
        real_images = self.unpack_images(data)
        batch_size = ops.shape(real_images)[0]

        for _ in range(self.d_steps):
            fake_images = self.generator(self.sample_noise(batch_size), training=True)
            real_seen, fake_seen = self.augment_images(real_images), self.augment_images(fake_images)
            with tf.GradientTape() as tape:
                real_scores = self.discriminator(real_seen, training=True)
                fake_scores = self.discriminator(fake_seen, training=True)
                d_losses = losses.hinge_discriminator_loss(real_scores, fake_scores)
                d_losses += self.lazy_r1_penalty(lambda x: self.discriminator(x, training=True), real_seen)
                d_losses += self.consistency_penalty(lambda x: self.discriminator(x, training=True),
                                                     real_seen, real_scores, fake_seen, fake_scores)
                d_loss = self.d_optimizer.scale_loss(tf.nn.compute_average_loss(d_losses))
            d_variables = self.discriminator.trainable_variables
            self.d_optimizer.apply(tape.gradient(d_loss, d_variables), d_variables)
            self.track_real_logits(real_scores)

        noise = self.sample_noise(batch_size)
        with tf.GradientTape() as tape:
            scores = self.discriminator(self.augment_images(self.generator(noise, training=True)), training=True)
            g_losses = losses.wasserstein_generator_loss(scores)
            g_loss = self.g_optimizer.scale_loss(self.average_generator_loss(g_losses))
        g_variables = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(g_loss, g_variables), g_variables)

        self.d_loss_tracker.update_state(d_losses)
        self.g_loss_tracker.update_state(g_losses)
        self.real_score_tracker.update_state(real_scores)
        self.fake_score_tracker.update_state(fake_scores)
        return self.train_step_logs()

    def get_config(self):
        config = super().get_config()
        del config["generator"], config["discriminator"], config["real_label"]
        return {**config, "image_shape": self.image_shape, "width": self.width}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
