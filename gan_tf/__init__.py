"""gan_tf: generative models (GANs first) as Keras models, trained with `model.fit`."""

from gan_tf.data.builtin import DATASETS, DatasetError, DatasetUnavailableError, load_arrays, load_dataset, make_dataset
from gan_tf.models.gan import GAN, ConditionalGAN
from gan_tf.models.generative import GenerativeModel, Samples
from gan_tf.data.source import DataSource, open_source
from gan_tf.models import (ACGAN, CGAN, CVAE, DCGAN, LAPGAN, MLPGAN, MODELS, SAGAN, SNGAN, VAE, WGANGP, BigGAN,
                           ConditionalPixelCNN, PixelCNN, get_model_class)
from gan_tf.metrics import evaluation
from gan_tf.serving import export
from gan_tf.training import monitoring  # noqa: E402  (modules of the public API)

__version__ = "0.1.0"
