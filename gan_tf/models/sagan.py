"""SAGAN: SN-GAN with self-attention in both networks.

Reference:
    Zhang, Goodfellow, Metaxas & Odena 2018, "Self-Attention Generative Adversarial Networks",
    https://arxiv.org/abs/1805.08318
"""

import keras

from gan_tf.models.sngan import SNGAN, self_attention, sngan_discriminator
from gan_tf.nn.layers import spectrally_normalized
from gan_tf.nn.networks import generator_layers


def sagan_generator(latent_dim, image_shape, width=64):
    """DCGAN's generator with spectral norm on every layer, ReLU, and self-attention.

    SN Dense -> BN -> ReLU -> SN ConvT(s1) -> BN -> ReLU -> SN ConvT(s2) -> BN -> ReLU -> ...
    -> SN ConvT(C, s2, tanh), with the attention block after the map of side
    `gan_tf.nn.networks.attention_side` (H/2 at 28x28: just before the output layer); the output
    layer is float32 under any policy.
    """
    noise = keras.Input((latent_dim,), name="z")
    images = generator_layers(
        noise, image_shape, width, activation=keras.layers.ReLU, wrap=spectrally_normalized, attention=self_attention
    )
    return keras.Model(noise, images, name="generator")


@keras.saving.register_keras_serializable(package="gan_tf")
class SAGAN(SNGAN):
    """SAGAN: self-attention at the middle resolution of G and D, spectral norm in both, hinge loss.

    The attention block (`gan_tf.nn.layers.SelfAttention2D`, its gain `gamma` starting at 0) lets
    each position of a feature map draw on every other position, so distant parts of an image
    can agree (left and right halves of a symmetric garment) where convolutions see only a
    neighbourhood. Spectral norm on G too conditions its training. One D step per G step, as
    in the paper, but not its two time-scale rates (TTUR: G at a quarter of D's): here G learns
    as fast as D, Adam(4e-4, beta_1=0, beta_2=0.9) for both, chosen by measurement
    (`default_optimizers`).

    Train step, trackers and arguments are `SNGAN`'s; its batches of 64 are not (SN-GAN's 32
    were measured without attention).

    Example:
        >>> gan = SAGAN(image_shape=(28, 28, 1), seed=0)
        >>> gan.compile()  # Adam(4e-4) for D and G
        >>> gan.fit(load_dataset("fashion_mnist", 64), epochs=20)

    Reference:
        Zhang et al. 2018, "Self-Attention Generative Adversarial Networks",
        https://arxiv.org/abs/1805.08318; Heusel et al. 2017, "GANs Trained by a Two
        Time-Scale Update Rule Converge to a Local Nash Equilibrium" (TTUR).
    """

    default_batch_size = 64

    @staticmethod
    def build_networks(latent_dim, image_shape, width=64):
        return (
            sagan_generator(latent_dim, image_shape, width),
            sngan_discriminator(image_shape, self_attention_block=True, width=width),
        )

    def default_optimizers(self):
        """Adam(4e-4, beta_1=0, beta_2=0.9) for both networks. The paper's two time-scale rates
        (G at 1e-4) left G behind at short budgets: on mnist_5k (`bench/quality.py`,
        docs/results/gans.md, "BigGAN and SAGAN: G as fast as D"), FID 257.7 and 125.4 after
        5 and 10 epochs with them, 112.1 and 45.2 with G at 4e-4."""
        return {
            "discriminator": keras.optimizers.Adam(4e-4, beta_1=0.0, beta_2=0.9, name="d_adam"),
            "generator": keras.optimizers.Adam(4e-4, beta_1=0.0, beta_2=0.9, name="g_adam"),
        }
