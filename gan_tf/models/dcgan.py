"""DCGAN: the deep convolutional GAN, with TensorFlow's DCGAN tutorial network as default.

Reference:
    Radford, Metz & Chintala 2015, "Unsupervised Representation Learning with Deep
    Convolutional Generative Adversarial Networks", https://arxiv.org/abs/1511.06434
"""

import keras

from gan_tf.gan import GAN


def check_image_shape(image_shape):
    """Validates an `(H, W, C)` shape the DCGAN networks can produce (H, W divisible by 4)."""
    image_shape = tuple(int(d) for d in image_shape)
    if len(image_shape) != 3 or min(image_shape) < 1 or image_shape[0] % 4 or image_shape[1] % 4:
        raise ValueError(
            "`image_shape` must be (height, width, channels) with height and width divisible "
            f"by 4 (two stride-2 upsamplings). Received: image_shape={image_shape}"
        )
    return image_shape


def check_dropout(dropout):
    """Validates a dropout rate in [0, 1) and returns it as a float."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
    return float(dropout)


def generator_layers(x, image_shape):
    """The tutorial generator's layers on tensor `x`: Dense -> 3 transposed convs -> tanh.

    Dense(H/4 * W/4 * 256) -> ConvT(128, stride 1) -> ConvT(64, stride 2) ->
    ConvT(C, stride 2, tanh); batch norm and LeakyReLU after every layer but the output. The
    output layer is float32 under any mixed-precision policy.
    """
    height, width, channels = image_shape
    x = keras.layers.Dense((height // 4) * (width // 4) * 256, use_bias=False)(x)
    x = keras.layers.BatchNormalization(synchronized=True)(x)
    x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.Reshape((height // 4, width // 4, 256))(x)
    for filters, strides in ((128, 1), (64, 2)):
        x = keras.layers.Conv2DTranspose(filters, 5, strides=strides, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(synchronized=True)(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    return keras.layers.Conv2DTranspose(
        channels, 5, strides=2, padding="same", activation="tanh", dtype="float32", name="images"
    )(x)


def discriminator_features(x, dropout=0.3):
    """The tutorial discriminator's trunk: Conv(64, s2) -> Conv(128, s2) -> flattened features.

    LeakyReLU and dropout after each convolution; no batch norm (in particular not on the
    input).
    """
    for filters in (64, 128):
        x = keras.layers.Conv2D(filters, 5, strides=2, padding="same")(x)
        x = keras.layers.LeakyReLU(0.2)(x)
        x = keras.layers.Dropout(dropout)(x)
    return keras.layers.Flatten()(x)


def discriminator_layers(x, dropout=0.3):
    """The tutorial discriminator: its trunk, then a Dense(1) logit (float32 under any policy)."""
    return keras.layers.Dense(1, dtype="float32", name="logit")(discriminator_features(x, dropout))


def dcgan_generator(latent_dim, image_shape):
    noise = keras.Input((latent_dim,), name="z")
    return keras.Model(noise, generator_layers(noise, image_shape), name="generator")


def dcgan_discriminator(image_shape, dropout=0.3):
    images = keras.Input(image_shape, name="images")
    return keras.Model(images, discriminator_layers(images, dropout), name="discriminator")


@keras.saving.register_keras_serializable(package="gan_tf")
class DCGAN(GAN):
    """DCGAN with the TensorFlow tutorial's networks, adapted to any `(H, W, C)` with H, W % 4 == 0.

    Strided convolutions in D, transposed convolutions in G, batch norm in G except its
    output, LeakyReLU, tanh output (data in [-1, 1]), Gaussian noise, Adam(2e-4, beta_1=0.5).

    Args:
        image_shape: `(H, W, C)`, e.g. (28, 28, 1) for MNIST or (32, 32, 3) for CIFAR-10.
        latent_dim: size of z.
        dropout: dropout rate after each of D's convolutions.
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
        noise="gaussian",
        real_label=0.9,
        d_steps=1,
        seed=None,
        **kwargs,
    ):
        self.image_shape = check_image_shape(image_shape)
        self.dropout = check_dropout(dropout)
        super().__init__(
            generator=dcgan_generator(latent_dim, self.image_shape),
            discriminator=dcgan_discriminator(self.image_shape, dropout),
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
        return {**config, "image_shape": self.image_shape, "dropout": self.dropout}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
