"""DCGAN: the deep convolutional GAN, with TensorFlow's DCGAN tutorial network (grown by
resolution as in the DCGAN paper, see `gan_tf.nn.networks`).

Reference:
    Radford, Metz & Chintala 2015, "Unsupervised Representation Learning with Deep
    Convolutional Generative Adversarial Networks", https://arxiv.org/abs/1511.06434
"""

import keras

from gan_tf.models.gan import GAN
from gan_tf.nn.networks import check_dropout, check_image_shape, check_width, dcgan_discriminator, dcgan_generator


@keras.saving.register_keras_serializable(package="gan_tf")
class DCGAN(GAN):
    """DCGAN with the TensorFlow tutorial's networks, grown to any `(H, W, C)` with H, W % 4 == 0.

    Strided convolutions in D, transposed convolutions in G, batch norm in G except its
    output, LeakyReLU, tanh output (data in [-1, 1]), Gaussian noise.

    Defaults chosen by measurement (`bench/quality.py --epochs=20`, the quickstart's budget on
    mnist_5k; docs/results/gans.md, "New DCGAN defaults"): batches of 32, no dropout in D (the
    paper has none; TensorFlow's tutorial uses 0.3) and Adam(8e-4, beta_1=0.5) for both networks
    (the paper: 2e-4). Together they took FID (2,000 samples) from 88.7 and 72.3 (seeds 0 and 1)
    to 32.6 and 32.6 in the same 20 epochs, which take no longer at batch 32.

    Args:
        image_shape: `(H, W, C)`, e.g. (28, 28, 1) for MNIST, (32, 32, 3) for CIFAR-10 or
            (64, 64, 3); the networks get one stride-2 block per doubling
            (`gan_tf.nn.networks.num_upsamplings`).
        latent_dim: size of z.
        dropout: dropout rate after each of D's convolutions (default none: the tutorial's 0.3
            gave FID 60.2 against 48.3 without, at batch 32 and the paper's learning rate).
        width: channel unit: G's last hidden map and D's first have `width` channels, and
            each block further from the image twice as many, up to `8 width`.
        spectral_norm: divide each of D's weight matrices by its largest singular value
            (`gan_tf.nn.layers.SpectralNormalization`, as SN-GAN's D; the loss stays DCGAN's).
            Off by default: at the quickstart's 20 epochs it lowered FID (41.8 and 43.6 against
            48.9 and 45.6, seeds 0 and 1) but also precision and recall (docs/results/gans.md,
            "Spectral normalization at the quickstart budget").
        noise, real_label, d_steps, seed, **kwargs: see `GAN`.

    Example:
        >>> gan = DCGAN(image_shape=(28, 28, 1), seed=0)
        >>> gan.compile()
        >>> gan.fit(load_dataset("mnist_5k", DCGAN.default_batch_size), epochs=20)
        >>> images = gan.generate(16, seed=1)  # [16, 28, 28, 1] in [-1, 1]

    Reference:
        Radford et al. 2015, "Unsupervised Representation Learning with Deep Convolutional
        Generative Adversarial Networks", https://arxiv.org/abs/1511.06434
    """

    default_batch_size = 32

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=100,
        dropout=0.0,
        width=64,
        spectral_norm=False,
        noise="gaussian",
        real_label=0.9,
        d_steps=1,
        seed=None,
        **kwargs,
    ):
        self.image_shape = check_image_shape(image_shape)
        self.dropout = check_dropout(dropout)
        self.width = check_width(width)
        self.spectral_norm = bool(spectral_norm)
        super().__init__(
            generator=dcgan_generator(latent_dim, self.image_shape, self.width),
            discriminator=dcgan_discriminator(self.image_shape, dropout, self.width, self.spectral_norm),
            latent_dim=latent_dim,
            noise=noise,
            real_label=real_label,
            d_steps=d_steps,
            seed=seed,
            **kwargs,
        )

    def default_optimizers(self):
        """Adam(8e-4, beta_1=0.5) for both: four times the paper's rate, chosen by measurement
        at batch 32 without dropout: FID 32.6 (seeds 0 and 1) against 35.4 and 36.0 at 4e-4
        and 48.3 and 48.4 at 2e-4 (D at 4e-4 and G at 1e-4, TTUR-style, gave 118.2 with
        the defaults of then); the moving average of G's weights smooths the larger steps."""
        return {
            "discriminator": keras.optimizers.Adam(8e-4, beta_1=0.5, name="d_adam"),
            "generator": keras.optimizers.Adam(8e-4, beta_1=0.5, name="g_adam"),
        }

    def get_config(self):
        config = super().get_config()
        del config["generator"], config["discriminator"]
        return {**config, "image_shape": self.image_shape, "dropout": self.dropout, "width": self.width,
                "spectral_norm": self.spectral_norm}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
