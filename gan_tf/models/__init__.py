"""The models (the GANs, LAPGAN's pyramid of GANs, StackGAN from text, the image-to-image GANs, MidiNet for melodies, and the VAE, PixelCNN and PixelRNN baselines), and the one registry that maps `--model` names to them.

Adding a model: one file in this package, one line in `MODELS`, and its tests.
"""

from gan_tf.models.acgan import ACGAN
from gan_tf.models.biggan import BigGAN
from gan_tf.models.cgan import CGAN
from gan_tf.models.cyclegan import CycleGAN
from gan_tf.models.dcgan import DCGAN
from gan_tf.models.lapgan import LAPGAN
from gan_tf.models.midinet import MidiNet
from gan_tf.models.mlp_gan import MLPGAN
from gan_tf.models.pix2pix import Pix2Pix
from gan_tf.models.pixelcnn import ConditionalPixelCNN, PixelCNN
from gan_tf.models.pixelrnn import PixelRNN
from gan_tf.models.sagan import SAGAN
from gan_tf.models.self_conditioned_gan import SelfConditionedGAN
from gan_tf.models.sngan import SNGAN
from gan_tf.models.srgan import SRGAN
from gan_tf.models.stackgan import StackGAN
from gan_tf.models.vae import CVAE, VAE
from gan_tf.models.wgan_gp import WGANGP

MODELS = {
    "mlp_gan": MLPGAN,
    "dcgan": DCGAN,
    "cgan": CGAN,
    "self_conditioned_gan": SelfConditionedGAN,
    "wgan_gp": WGANGP,
    "sngan": SNGAN,
    "acgan": ACGAN,
    "sagan": SAGAN,
    "biggan": BigGAN,
    "lapgan": LAPGAN,
    "pix2pix": Pix2Pix,
    "cyclegan": CycleGAN,
    "srgan": SRGAN,
    "stackgan": StackGAN,
    "midinet": MidiNet,
    "vae": VAE,
    "cvae": CVAE,
    "pixelcnn": PixelCNN,
    "conditional_pixelcnn": ConditionalPixelCNN,
    "pixelrnn": PixelRNN,
}


def get_model_class(name):
    """Returns the model class registered as `name`, or raises `ValueError` naming the choices."""
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}. Choose one of: {', '.join(MODELS)}.")
    return MODELS[name]
