"""`train(config)`: the one library function behind `train.py`.

It builds the dataset and the model named by a `TrainConfig`, trains with `model.fit` and the
standard callbacks (progress bar, TensorBoard, a sample grid and an atomic `.keras` checkpoint
each epoch, a NaN guard), and exports the generator as a versioned SavedModel.
"""

import dataclasses
import os
import time

import keras

from gan_tf import callbacks as gan_callbacks
from gan_tf import data as gan_data
from gan_tf.export import export_generator
from gan_tf.models import MODELS, get_model_class


@dataclasses.dataclass
class TrainConfig:
    """Everything one training run needs; `train.py` fills it from its flags.

    `None` means "the default": batch size from the model's `default_batch_size`, learning
    rates from its `default_optimizers()`, `workdir` `runs/<model>`, `export_dir`
    `saved_models/<model>`.
    """

    model: str = "dcgan"
    dataset: str = "mnist_5k"
    data_dir: str = None
    epochs: int = 20
    steps_per_epoch: int = None
    batch_size: int = None
    latent_dim: int = 100
    d_learning_rate: float = None
    g_learning_rate: float = None
    real_label: float = 0.9
    d_steps: int = 1
    seed: int = 0
    workdir: str = None
    export_dir: str = None
    verbose: str = "auto"

    def validate(self):
        """Raises `ValueError` with a one-line message for the first invalid field."""
        if self.model not in MODELS:
            raise ValueError(f"Unknown model {self.model!r}. Choose one of: {', '.join(MODELS)}.")
        gan_data.dataset_info(self.dataset)
        _at_least(1, epochs=self.epochs, latent_dim=self.latent_dim, d_steps=self.d_steps)
        if self.batch_size is not None:
            _at_least(1, batch_size=self.batch_size)
        if self.steps_per_epoch is not None:
            _at_least(1, steps_per_epoch=self.steps_per_epoch)
        for name in ("d_learning_rate", "g_learning_rate"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive. Received: {value}")
        if not 0.0 < self.real_label <= 1.0:
            raise ValueError(f"real_label must be in (0, 1]. Received: {self.real_label}")

    def resolved(self):
        """A copy with the model's defaults filled in for every `None` that has one."""
        model_class = get_model_class(self.model)
        return dataclasses.replace(
            self,
            batch_size=self.batch_size or model_class.default_batch_size,
            workdir=self.workdir or os.path.join("runs", self.model),
            export_dir=self.export_dir or os.path.join("saved_models", self.model),
        )


def _at_least(minimum, **values):
    for name, value in values.items():
        if value < minimum:
            raise ValueError(f"{name} must be at least {minimum}. Received: {value}")


@dataclasses.dataclass
class TrainResult:
    """What `train` leaves behind."""

    model: keras.Model
    history: dict
    export_path: str
    checkpoint_path: str
    samples_dir: str
    seconds: float


def build_model(config, dataset_info):
    """The compiled GAN that `config` names, sized for the dataset."""
    model_class = get_model_class(config.model)
    kwargs = dict(
        image_shape=dataset_info.image_shape,
        latent_dim=config.latent_dim,
        real_label=config.real_label,
        d_steps=config.d_steps,
        seed=config.seed,
    )
    if model_class.conditional:
        kwargs["num_classes"] = dataset_info.num_classes
    gan = model_class(**kwargs)
    d_optimizer, g_optimizer = gan.default_optimizers()
    if config.d_learning_rate is not None:
        d_optimizer.learning_rate = config.d_learning_rate
    if config.g_learning_rate is not None:
        g_optimizer.learning_rate = config.g_learning_rate
    gan.compile(d_optimizer=d_optimizer, g_optimizer=g_optimizer)
    return gan


def train(config):
    """Trains the GAN `config` describes and exports its generator.

    Leaves in `config.workdir`: `logs/` (TensorBoard), `samples/epoch_NNNN.png` (fixed-noise
    grids), `checkpoints/gan.keras` (the whole GAN, optimizers included, after every epoch);
    and the generator SavedModel under `config.export_dir/<version>/`.

    Args:
        config: a `TrainConfig`.

    Returns:
        A `TrainResult`.

    Raises:
        ValueError: for an invalid config, before anything is loaded or trained.
        gan_tf.DatasetError: when the dataset cannot be read.
        gan_tf.callbacks.NonFiniteLossError: when a loss becomes NaN or infinite.
    """
    config.validate()
    config = config.resolved()
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)
    dataset_info = gan_data.dataset_info(config.dataset)
    model_class = get_model_class(config.model)
    dataset = gan_data.load_dataset(
        config.dataset,
        config.batch_size,
        value_range=model_class.value_range,
        data_dir=config.data_dir,
        seed=config.seed,
    )
    gan = build_model(config, dataset_info)

    checkpoint_path = os.path.join(config.workdir, "checkpoints", "gan.keras")
    samples_dir = os.path.join(config.workdir, "samples")
    callbacks = [
        gan_callbacks.StopOnNonFiniteLoss(),
        keras.callbacks.TensorBoard(os.path.join(config.workdir, "logs")),
        gan_callbacks.SampleGrid(samples_dir),
        gan_callbacks.AtomicCheckpoint(checkpoint_path),
    ]
    start = time.time()
    history = gan.fit(
        dataset,
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch,
        callbacks=callbacks,
        shuffle=False,  # the pipeline shuffles; tf.data input ignores this flag anyway
        verbose=config.verbose,
    )
    seconds = time.time() - start
    export_path = export_generator(
        gan,
        config.export_dir,
        class_names=dataset_info.class_names if gan.conditional else None,
        training_config=dataclasses.asdict(config),
    )
    return TrainResult(gan, history.history, export_path, checkpoint_path, samples_dir, seconds)
