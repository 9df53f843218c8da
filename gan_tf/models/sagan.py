"""SAGAN: SN-GAN with self-attention in both networks and two time-scale learning rates.

Reference:
    Zhang, Goodfellow, Metaxas & Odena 2018, "Self-Attention Generative Adversarial Networks",
    https://arxiv.org/abs/1805.08318
"""

import keras

from gan_tf.layers import SelfAttention2D, SpectralNormalization
from gan_tf.models.sngan import SNGAN, sngan_discriminator


def sagan_generator(latent_dim, image_shape):
    """DCGAN's generator with spectral norm on every layer and self-attention at H/2 x W/2.

    SN Dense -> BN -> ReLU -> SN ConvT(128, s1) -> BN -> ReLU -> SN ConvT(64, s2) -> BN -> ReLU
    -> self-attention -> SN ConvT(C, s2, tanh), the output layer float32 under any policy.
    """
    height, width, channels = image_shape
    noise = keras.Input((latent_dim,), name="z")
    x = SpectralNormalization(keras.layers.Dense((height // 4) * (width // 4) * 256, use_bias=False), name="sn_dense")(noise)
    x = keras.layers.BatchNormalization(synchronized=True)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Reshape((height // 4, width // 4, 256))(x)
    for filters, strides in ((128, 1), (64, 2)):
        conv = keras.layers.Conv2DTranspose(filters, 5, strides=strides, padding="same", use_bias=False)
        x = SpectralNormalization(conv, name=f"sn_deconv{filters}")(x)
        x = keras.layers.BatchNormalization(synchronized=True)(x)
        x = keras.layers.ReLU()(x)
    x = SelfAttention2D(spectral_norm=True, name="self_attention")(x)
    output = keras.layers.Conv2DTranspose(channels, 5, strides=2, padding="same", activation="tanh", dtype="float32")
    images = SpectralNormalization(output, dtype="float32", name="images")(x)
    return keras.Model(noise, images, name="generator")


@keras.saving.register_keras_serializable(package="gan_tf")
class SAGAN(SNGAN):
    """SAGAN: self-attention at the middle resolution of G and D, spectral norm in both, hinge loss.

    The attention block (`gan_tf.layers.SelfAttention2D`, its gain `gamma` starting at 0) lets
    each position of a feature map draw on every other position, so distant parts of an image
    can agree (left and right halves of a symmetric garment) where convolutions see only a
    neighbourhood. Spectral norm on G too conditions its training; and the two time-scale
    update rule (TTUR) gives D four times G's learning rate instead of several D steps per G
    step: Adam(1e-4) for G, Adam(4e-4) for D, beta_1=0, beta_2=0.9, as in the paper.

    Train step, trackers and arguments are `SNGAN`'s.

    Example:
        >>> gan = SAGAN(image_shape=(28, 28, 1), seed=0)
        >>> gan.compile()  # TTUR: D 4e-4, G 1e-4
        >>> gan.fit(load_dataset("fashion_mnist", 64), epochs=20)

    Reference:
        Zhang et al. 2018, "Self-Attention Generative Adversarial Networks",
        https://arxiv.org/abs/1805.08318; Heusel et al. 2017, "GANs Trained by a Two
        Time-Scale Update Rule Converge to a Local Nash Equilibrium" (TTUR).
    """

    @staticmethod
    def build_networks(latent_dim, image_shape):
        return sagan_generator(latent_dim, image_shape), sngan_discriminator(image_shape, self_attention=True)

    def default_optimizers(self):
        """TTUR: Adam(4e-4) for D, Adam(1e-4) for G, both beta_1=0, beta_2=0.9 (Zhang et al.)."""
        return (
            keras.optimizers.Adam(4e-4, beta_1=0.0, beta_2=0.9, name="d_adam"),
            keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9, name="g_adam"),
        )
