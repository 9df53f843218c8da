"""gan_tf: generative models (GANs first) as Keras models, trained with `model.fit`."""

from gan_tf.data import DATASETS, DatasetError, DatasetUnavailableError, load_arrays, load_dataset, make_dataset
from gan_tf.gan import GAN, ConditionalGAN
from gan_tf.generative import GenerativeModel, Samples
from gan_tf.sources import DataSource, open_source
from gan_tf.models import (ACGAN, CGAN, CVAE, DCGAN, LAPGAN, MLPGAN, MODELS, SAGAN, SNGAN, VAE, WGANGP, BigGAN,
                           ConditionalPixelCNN, PixelCNN, get_model_class)
from gan_tf import evaluation, export, monitoring  # noqa: E402  (modules of the public API)

__version__ = "0.1.0"
