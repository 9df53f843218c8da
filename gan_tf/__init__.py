"""gan_tf: generative models (GANs first) as Keras models, trained with `model.fit`.

The package, from the ground floor up (each part imports only the parts below it):

    nn/           layers, losses, likelihoods, shared networks, noise, EMA, the pyramid, the text encoder
    files, grids  files written whole or not at all; images tiled into one picture
    data/         every kind of dataset opened as a `DataSource`; each labelled dataset's own classifier
    serving/      SavedModel export, each family's serving signatures, the client, local sampling
    metrics/      quality metrics of images and melodies
    models/       the contract (`GenerativeModel`), the family bases, the models and their registry
    training/     `TrainConfig` and `train()`: the run, its callbacks, TensorBoard, strategies

Example:
    >>> import gan_tf
    >>> source = gan_tf.open_source("mnist_5k")
    >>> model = gan_tf.DCGAN.from_data(source.info, width=8)
    >>> model.compile_optimizers(model.default_optimizers())
    >>> history = model.fit(source.dataset(batch_size=64, seed=0), epochs=1, steps_per_epoch=2, verbose=0)
    >>> model.sample(4, seed=0).images.shape
    (4, 28, 28, 1)
"""

from gan_tf import data, metrics, models, nn, serving, training
from gan_tf.data import (DATASETS, DatasetError, DatasetInfo, DatasetUnavailableError, DataSource, load_arrays,
                         load_dataset, make_dataset, open_source)
from gan_tf.metrics.evaluation import Evaluator, evaluate_samples, make_evaluator
from gan_tf.models import (ACGAN, CGAN, CVAE, DCGAN, LAPGAN, MLPGAN, MODELS, SAGAN, SNGAN, SRGAN, VAE, WGANGP, BigGAN,
                           ConditionalPixelCNN, CycleGAN, MidiNet, Pix2Pix, PixelCNN, PixelRNN, SelfConditionedGAN, StackGAN,
                           get_model_class)
from gan_tf.models.gan import GAN, ConditionalGAN
from gan_tf.models.generative import GenerativeModel, Samples
from gan_tf.models.likelihood_model import LikelihoodModel
from gan_tf.models.translation import TranslationModel
from gan_tf.serving.export import export_model
from gan_tf.serving.sampling import describe_model, sample_local
from gan_tf.training import TrainConfig, TrainResult, train

__version__ = "0.2.0"

__all__ = [
    # the models, by the names `--model` takes in `MODELS`
    "MLPGAN", "DCGAN", "CGAN", "SelfConditionedGAN", "WGANGP", "SNGAN", "ACGAN", "SAGAN", "BigGAN", "LAPGAN", "Pix2Pix", "CycleGAN",
    "SRGAN", "StackGAN", "MidiNet", "VAE", "CVAE", "PixelCNN", "ConditionalPixelCNN", "PixelRNN", "MODELS", "get_model_class",
    # the contract and the family bases
    "GenerativeModel", "Samples", "GAN", "ConditionalGAN", "TranslationModel", "LikelihoodModel",
    # data
    "open_source", "DataSource", "DatasetInfo", "DatasetError", "DatasetUnavailableError", "DATASETS", "load_arrays",
    "load_dataset", "make_dataset",
    # training, evaluation, serving
    "TrainConfig", "TrainResult", "train", "Evaluator", "evaluate_samples", "make_evaluator", "export_model",
    "describe_model", "sample_local",
    # the sub-packages
    "data", "metrics", "models", "nn", "serving", "training",
]
