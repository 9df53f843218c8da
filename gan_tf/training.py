"""`train(config)`: the one library function behind `train.py`.

It builds the dataset and the model named by a `TrainConfig`, trains with `model.fit` and the
standard callbacks (progress bar; TensorBoard with losses, learning rates, steps per second,
sample grids, quality metrics every few epochs and the run's hparams; a sample grid PNG, the
loss curves and an atomic `.keras` checkpoint each epoch; a NaN guard), and exports the
generator as a versioned SavedModel.
"""

import contextlib
import dataclasses
import inspect
import os
import time

import tensorflow as tf

import keras

from gan_tf import callbacks as gan_callbacks
from gan_tf import data as gan_data
from gan_tf import monitoring
from gan_tf.distribute import STRATEGIES, is_chief, make_strategy, output_dir
from gan_tf.export import export_generator
from gan_tf.models import MODELS, get_model_class


# --mixed_precision choices: "off" (float32) or a Keras mixed dtype policy.
MIXED_PRECISION = ("off", "mixed_float16", "mixed_bfloat16")


@contextlib.contextmanager
def dtype_policy(name):
    """Builds the layers created inside with Keras dtype policy `name` ("off": as they are)."""
    if name == "off":
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@dataclasses.dataclass
class TrainConfig:
    """Everything one training run needs; `train.py` fills it from its flags.

    `None` means "the default": batch size from the model's `default_batch_size`, train steps
    per `tf.function` call from its `default_steps_per_execution` (or the largest number below
    it that divides `steps_per_epoch`: Keras runs whole calls; 1 under tf.distribute, where
    Keras 3.15 cannot run several), learning rates from its
    `default_optimizers()`, `workdir` `runs/<model>`, `export_dir` `saved_models/<model>`.

    Speed levers (bench/throughput.py measures them): `steps_per_execution` (several train
    steps per call: same results, less per-step overhead), `jit_compile` (XLA; slower on CPU,
    off by default), `mixed_precision` ("mixed_float16" with loss scaling, for GPUs;
    "mixed_bfloat16"; "off": float32; both mixed policies are slower on CPU).
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
    real_label: float = None
    d_steps: int = None
    ema_decay: float = None
    mismatch_weight: float = None
    seed: int = 0
    eval_every: int = 5
    eval_samples: int = 1000
    workdir: str = None
    export_dir: str = None
    strategy: str = "default"
    cpu_devices: int = None
    resume: bool = True
    steps_per_execution: int = None
    jit_compile: bool = False
    mixed_precision: str = "off"
    verbose: str = "auto"

    def validate(self):
        """Raises `ValueError` with a one-line message for the first invalid field."""
        if self.model not in MODELS:
            raise ValueError(f"Unknown model {self.model!r}. Choose one of: {', '.join(MODELS)}.")
        gan_data.dataset_info(self.dataset)
        _at_least(1, epochs=self.epochs, latent_dim=self.latent_dim)
        if self.d_steps is not None:
            _at_least(1, d_steps=self.d_steps)
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1). Received: {self.ema_decay}")
        if self.batch_size is not None:
            _at_least(1, batch_size=self.batch_size)
        if self.steps_per_epoch is not None:
            _at_least(1, steps_per_epoch=self.steps_per_epoch)
        _at_least(0, eval_every=self.eval_every)
        _at_least(4, eval_samples=self.eval_samples)
        for name in ("d_learning_rate", "g_learning_rate"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive. Received: {value}")
        if self.mismatch_weight is not None:
            if not self.mismatch_weight >= 0.0:
                raise ValueError(f"mismatch_weight must be >= 0. Received: {self.mismatch_weight}")
            if "mismatch_weight" not in inspect.signature(get_model_class(self.model)).parameters:
                raise ValueError(f"{self.model} has no mismatch_weight: only cgan pairs real images with wrong labels.")
        if self.real_label is not None:
            if not 0.0 < self.real_label <= 1.0:
                raise ValueError(f"real_label must be in (0, 1]. Received: {self.real_label}")
            if "real_label" not in inspect.signature(get_model_class(self.model)).parameters:
                raise ValueError(f"{self.model} has no real_label: its discriminator has no targets.")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"Unknown strategy {self.strategy!r}. Choose one of: {', '.join(STRATEGIES)}.")
        if self.steps_per_execution is not None:
            _at_least(1, steps_per_execution=self.steps_per_execution)
            if self.steps_per_epoch is not None and self.steps_per_epoch % self.steps_per_execution:
                # Keras runs whole executions: the epoch would silently grow to a multiple.
                raise ValueError(
                    f"steps_per_epoch ({self.steps_per_epoch}) must be a multiple of "
                    f"steps_per_execution ({self.steps_per_execution})."
                )
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(
                f"Unknown mixed_precision {self.mixed_precision!r}. Choose one of: {', '.join(MIXED_PRECISION)}."
            )
        if self.steps_per_execution not in (None, 1) and self.strategy != "default":
            # Keras 3.15's multi-step loop fails under tf.distribute with a GAN's train_step
            # ("You must feed a value for placeholder tensor ... while/cond/Placeholder").
            raise ValueError(
                f"steps_per_execution={self.steps_per_execution} works only with strategy='default' "
                f"(Keras 3.15 fails on it under strategy={self.strategy!r}); leave it unset."
            )
        if self.cpu_devices is not None:
            _at_least(1, cpu_devices=self.cpu_devices)
            if self.strategy != "mirrored":
                raise ValueError("cpu_devices needs strategy='mirrored'.")

    def resolved(self):
        """A copy with the model's defaults filled in for every `None` that has one."""
        model_class = get_model_class(self.model)
        steps_per_execution = self.steps_per_execution
        if steps_per_execution is None:
            # One step per call under tf.distribute: see `validate`.
            steps_per_execution = model_class.default_steps_per_execution if self.strategy == "default" else 1
            if self.steps_per_epoch is not None:  # the largest that divides the epoch
                steps_per_execution = max(
                    d for d in range(1, steps_per_execution + 1) if self.steps_per_epoch % d == 0
                )
        return dataclasses.replace(
            self,
            batch_size=self.batch_size or model_class.default_batch_size,
            steps_per_execution=steps_per_execution,
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
    metrics: dict = None  # the newest quality evaluation, if one ran


def build_model(config, dataset_info):
    """The compiled GAN that `config` (resolved) names, sized for the dataset.

    Under `config.mixed_precision` the networks compute in that policy's dtype and keep float32
    variables; their outputs (images, logits) stay float32.
    """
    model_class = get_model_class(config.model)
    kwargs = dict(image_shape=dataset_info.image_shape, latent_dim=config.latent_dim, seed=config.seed)
    for name in ("real_label", "d_steps", "ema_decay", "mismatch_weight"):  # None: the model's own default
        if getattr(config, name) is not None:
            kwargs[name] = getattr(config, name)
    if model_class.conditional:
        kwargs["num_classes"] = dataset_info.num_classes
    with dtype_policy(config.mixed_precision):
        gan = model_class(**kwargs)
    d_optimizer, g_optimizer = gan.default_optimizers()
    if config.d_learning_rate is not None:
        d_optimizer.learning_rate = config.d_learning_rate
    if config.g_learning_rate is not None:
        g_optimizer.learning_rate = config.g_learning_rate
    gan.compile(
        d_optimizer=d_optimizer,
        g_optimizer=g_optimizer,
        steps_per_execution=config.steps_per_execution,
        jit_compile=config.jit_compile,
    )
    return gan


def train(config, callbacks=()):
    """Trains the GAN `config` describes, resuming from its workdir, and exports its generator.

    Leaves in `config.workdir`: `logs/` (TensorBoard: `train/` losses, learning rates and
    steps per second; `samples/` a fixed-noise grid every epoch and the `quality/*` metrics
    every `eval_every` epochs on `eval_samples` samples; `real_floor/` the metrics' floors; the
    run's hparams), `samples/epoch_NNNN.png` and `samples.png` (fixed-noise grids, the newest
    too), `history.csv` and `loss_curves.png`, `checkpoints/epoch_NNNN.keras` (the whole GAN,
    optimizers and noise stream included, after every epoch; the two newest are kept); and the
    generator SavedModel under `config.export_dir/<version>/`. The quality metrics use the
    dataset's classifier (`gan_tf.evaluation`), trained and cached on first use.

    With `config.resume` (the default), a run whose workdir holds a checkpoint continues from
    the newest one: weights, both optimizers' state and the epoch count are restored, so a
    killed run restarted with the same config ends with the same number of optimizer steps as
    one never interrupted. Granularity is the epoch: steps of an interrupted epoch are redone.

    Under `strategy="multi_worker"` every worker runs this function with the same config; the
    chief writes the outputs, the other workers write to temporary directories that are
    removed, and all of them resume from the chief's checkpoints (the workdir must be on storage
    every worker can read).

    Args:
        config: a `TrainConfig`. `batch_size` is the global batch, split across replicas.
        callbacks: extra Keras callbacks, run after the standard ones.

    Returns:
        A `TrainResult`.

    Raises:
        ValueError: for an invalid config, before anything is loaded or trained.
        gan_tf.DatasetError: when the dataset cannot be read.
        gan_tf.callbacks.NonFiniteLossError: when a loss becomes NaN or infinite.
    """
    config.validate()
    config = config.resolved()
    strategy = make_strategy(config.strategy, cpu_devices=config.cpu_devices)  # before any TF op
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
        # fit keeps one iterator across epochs when steps_per_epoch is set: repeat, so that
        # every epoch gets its steps instead of running the data dry.
        repeat=config.steps_per_epoch is not None,
    )
    options = tf.data.Options()
    # In-memory data has no files to shard by: each worker takes its share of the batches.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.with_options(options)

    with strategy.scope():
        gan = build_model(config, dataset_info)
    checkpoints_dir = os.path.join(config.workdir, "checkpoints")
    initial_epoch = 0
    latest = gan_callbacks.latest_checkpoint(checkpoints_dir)
    if latest is not None and not config.resume:
        raise ValueError(
            f"{checkpoints_dir} holds checkpoints of an earlier run; resume it (the default) or "
            "choose a new workdir. Nothing was overwritten."
        )
    if latest is not None:
        initial_epoch, path = latest
        gan.load_weights(path)
        print(f"Resuming from {path} ({initial_epoch} of {config.epochs} epochs done).")

    evaluator = None
    evaluates = config.eval_every and any(e % config.eval_every == 0 for e in range(initial_epoch + 1, config.epochs + 1))
    if evaluates and is_chief(strategy):  # only the chief logs; no classifier if unused
        from gan_tf.evaluation import Evaluator

        evaluator = Evaluator(config.dataset, config.eval_samples, data_dir=config.data_dir, seed=config.seed)

    with output_dir(config.workdir, strategy) as workdir:
        logs_dir = os.path.join(workdir, "logs")
        monitoring.log_hparams(logs_dir, hparams_of(config, gan))
        samples_monitor = monitoring.TensorBoardSamples(
            os.path.join(logs_dir, "samples"), evaluator, config.eval_every,
            png_directory=os.path.join(workdir, "samples"), latest_png=os.path.join(workdir, "samples.png"))
        history_csv = os.path.join(workdir, "history.csv")
        standard_callbacks = [
            gan_callbacks.StopOnNonFiniteLoss(),
            keras.callbacks.TensorBoard(logs_dir, write_steps_per_second=True),
            samples_monitor,
            gan_callbacks.EpochCheckpoint(os.path.join(workdir, "checkpoints")),
            keras.callbacks.CSVLogger(history_csv, append=True),
            monitoring.LossCurves(history_csv, os.path.join(workdir, "loss_curves.png")),
        ]
        start = time.time()
        history = gan.fit(
            dataset,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=config.steps_per_epoch,
            callbacks=standard_callbacks + list(callbacks),
            shuffle=False,  # the pipeline shuffles; tf.data input ignores this flag anyway
            verbose=config.verbose if is_chief(strategy) else 0,
        )
        seconds = time.time() - start
        with output_dir(config.export_dir, strategy) as export_dir:
            export_path = export_generator(
                gan,
                export_dir,
                class_names=dataset_info.class_names if gan.conditional else None,
                training_config=dataclasses.asdict(config),
            )
    latest = gan_callbacks.latest_checkpoint(checkpoints_dir)
    return TrainResult(
        model=gan,
        history=history.history,
        export_path=export_path if is_chief(strategy) else None,
        checkpoint_path=latest[1] if latest else None,
        samples_dir=os.path.join(config.workdir, "samples"),
        seconds=seconds,
        metrics=samples_monitor.latest_metrics,
    )


def hparams_of(config, gan):
    """The config fields that shape training, as TensorBoard's HParams dashboard records them.

    Learning rates, `real_label`, `d_steps`, `ema_decay` and `mismatch_weight` are the ones in use (the model's defaults unless
    the config set them).
    """
    ignored = {"data_dir", "workdir", "export_dir", "resume", "verbose"}
    hparams = {name: value for name, value in dataclasses.asdict(config).items() if name not in ignored}
    hparams["real_label"] = gan.get_config().get("real_label")  # None for critics
    hparams["d_steps"] = gan.d_steps
    hparams["ema_decay"] = gan.ema_decay if gan.ema_decay is not None else "off"
    hparams["mismatch_weight"] = gan.get_config().get("mismatch_weight")  # None but for cgan
    hparams["d_learning_rate"] = float(keras.ops.convert_to_numpy(gan.d_optimizer.learning_rate))
    hparams["g_learning_rate"] = float(keras.ops.convert_to_numpy(gan.g_optimizer.learning_rate))
    return hparams
