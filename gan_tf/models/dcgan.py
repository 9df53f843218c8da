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
    output, LeakyReLU, tanh output (data in [-1, 1]), Gaussian noise, Adam(2e-4, beta_1=0.5).

    Args:
        image_shape: `(H, W, C)`, e.g. (28, 28, 1) for MNIST, (32, 32, 3) for CIFAR-10 or
            (64, 64, 3); the networks get one stride-2 block per doubling
            (`gan_tf.nn.networks.num_upsamplings`).
        latent_dim: size of z.
        dropout: dropout rate after each of D's convolutions.
        width: channel unit: G's last hidden map and D's first have `width` channels, and
            each block further from the image twice as many, up to `8 width`.
        noise, real_label, d_steps, seed, **kwargs: see `GAN`.

    Example:
        >>> gan = DCGAN(image_shape=(28, 28, 1), seed=0)
        >>> gan.compile()
        >>> gan.fit(load_dataset("mnist_5k", 64), epochs=20)
        >>> images = gan.generate(16, seed=1)  # [16, 28, 28, 1] in [-1, 1]

    Reference:
        Radford et al. 2015, "Unsupervised Representation Learning with Deep Convolutional
        Generative Adversarial Networks", https://arxiv.org/abs/1511.06434
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=100,
        dropout=0.3,
        width=64,
        noise="gaussian",
        real_label=0.9,
        d_steps=1,
        seed=None,
        **kwargs,
    ):
        self.image_shape = check_image_shape(image_shape)
        self.dropout = check_dropout(dropout)
        self.width = check_width(width)
        super().__init__(
            generator=dcgan_generator(latent_dim, self.image_shape, self.width),
            discriminator=dcgan_discriminator(self.image_shape, dropout, self.width),
            latent_dim=latent_dim,
            noise=noise,
            real_label=real_label,
            d_steps=d_steps,
            seed=seed,
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        del config["generator"], config["discriminator"]
        return {**config, "image_shape": self.image_shape, "dropout": self.dropout, "width": self.width}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
