"""`train(config)`: the one library function behind `train.py`.

It opens the data source and builds the model named by a `TrainConfig` (the model sized for the
data through the contract's `from_data`, its own settings from `model_args`), trains with
`model.fit` and the standard callbacks (progress bar; TensorBoard with losses, learning rates,
steps per second, sample grids, quality metrics every few epochs and the run's hparams; a sample
grid PNG, the loss curves and an atomic `.keras` checkpoint each epoch; a NaN guard), and
exports the model as a versioned SavedModel. It talks to the model only through
`gan_tf.generative.GenerativeModel`.
"""

import contextlib
import dataclasses
import os
import time
import warnings

import tensorflow as tf

import keras

from gan_tf import callbacks as gan_callbacks
from gan_tf import monitoring, sources
from gan_tf.distribute import STRATEGIES, is_chief, make_strategy, output_dir
from gan_tf.export import export_model
from gan_tf.generative import check_model_args
from gan_tf.models import MODELS, get_model_class
from gan_tf.workdir_lock import WorkdirLock


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

    `dataset` is a built-in name, `folder:PATH` or `tfds:NAME[:SPLIT]`, read at `image_size`
    (None: native; S or "HxW") with `channels` (None: the data's, 1 or 3) and `crop` ("center"
    or "none"), see `gan_tf.sources`; `cache_dir` caches decoded images of data that stream.

    `model_args` are constructor arguments of the model (`{"gp_weight": 5}`): checked against
    its constructor before anything is loaded, and validated by the constructor itself.
    `latent_dim` is the one model setting with a field of its own (None: the model's).

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
    image_size: str = None
    channels: int = None
    crop: str = "center"
    cache_dir: str = None
    epochs: int = 20
    steps_per_epoch: int = None
    batch_size: int = None
    latent_dim: int = None
    model_args: dict = dataclasses.field(default_factory=dict)
    d_learning_rate: float = None
    g_learning_rate: float = None
    seed: int = 0
    eval_every: int = 5
    eval_samples: int = 1000
    inception_weights: str = None
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
        sources.check_spec(self.dataset)
        sources.parse_image_size(self.image_size)
        if self.channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1 or 3. Received: {self.channels}")
        if self.crop not in sources.CROPS:
            raise ValueError(f"crop must be one of {', '.join(sources.CROPS)}. Received: {self.crop!r}")
        _at_least(1, epochs=self.epochs)
        if self.latent_dim is not None:
            _at_least(1, latent_dim=self.latent_dim)
        check_model_args(self.model, get_model_class(self.model), self.all_model_args())
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

    def all_model_args(self):
        """`model_args` with `latent_dim` (when set) and `seed`: what the constructor gets."""
        arguments = dict(self.model_args or {})
        if self.latent_dim is not None:
            arguments["latent_dim"] = self.latent_dim
        return arguments

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
    """The compiled model that `config` (resolved) names, sized for the data (`DatasetInfo`).

    Under `config.mixed_precision` the networks compute in that policy's dtype and keep float32
    variables; their outputs (images, logits) stay float32.

    Raises:
        ValueError: when a model argument is refused by the constructor, or the model needs
            labels the data do not have.
    """
    model_class = get_model_class(config.model)
    with dtype_policy(config.mixed_precision):
        model = model_class.from_data(dataset_info, seed=config.seed, **config.all_model_args())
    optimizers = model.default_optimizers()
    for role, rate in (("discriminator", config.d_learning_rate), ("generator", config.g_learning_rate)):
        if rate is None:
            continue
        if role not in optimizers:
            raise ValueError(f"{config.model} has no {role} optimizer (its roles: {', '.join(optimizers)}).")
        optimizers[role].learning_rate = rate
    model.compile_optimizers(
        optimizers, steps_per_execution=config.steps_per_execution, jit_compile=config.jit_compile
    )
    return model


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
        gan_tf.workdir_lock.WorkdirInUseError: when another live run holds the workdir.
        gan_tf.callbacks.NonFiniteLossError: when a loss becomes NaN or infinite.
    """
    config.validate()
    config = config.resolved()
    # Keras warns "Your input ran out of data" at the end of every epoch of a finite dataset:
    # that is how it finds the epoch's end, and it is expected here.
    warnings.filterwarnings("ignore", message=".*ran out of data.*")
    strategy = make_strategy(config.strategy, cpu_devices=config.cpu_devices)  # before any TF op
    # One process per workdir (the chief's; other workers write to temporary directories).
    lock = WorkdirLock(config.workdir).acquire() if is_chief(strategy) else None
    try:
        return _train_with_lock(config, strategy, callbacks)
    finally:
        if lock is not None:
            lock.release()


def _train_with_lock(config, strategy, callbacks):
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)
    model_class = get_model_class(config.model)
    source = sources.open_source(
        config.dataset, data_dir=config.data_dir, image_size=config.image_size, channels=config.channels,
        crop=config.crop, cache_dir=config.cache_dir,
    )
    dataset_info = source.info
    if config.verbose and is_chief(strategy):
        print(f"Data: {source.summary}.")
    with strategy.scope():  # before the pipeline: a model that cannot use the data says so first
        gan = build_model(config, dataset_info)
    dataset = source.dataset(
        config.batch_size,
        value_range=model_class.value_range,
        seed=config.seed,
        # fit keeps one iterator across epochs when steps_per_epoch is set: repeat, so that
        # every epoch gets its steps instead of running the data dry.
        repeat=config.steps_per_epoch is not None,
    )
    options = tf.data.Options()
    # Each worker takes its share of the batches (in-memory data have no files to shard by).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.with_options(options)

    checkpoints_dir = os.path.join(config.workdir, "checkpoints")
    initial_epoch = 0
    latest = gan_callbacks.latest_checkpoint(checkpoints_dir)
    if latest is not None and not config.resume:
        raise ValueError(
            f"{checkpoints_dir} holds checkpoints of an earlier run; resume it (the default) or "
            "choose a new workdir. Nothing was overwritten."
        )
    if latest is not None:
        initial_epoch, path = resume_from_checkpoints(gan, checkpoints_dir)
        print(f"Resuming from {path} ({initial_epoch} of {config.epochs} epochs done).")

    evaluator = None
    evaluates = config.eval_every and any(e % config.eval_every == 0 for e in range(initial_epoch + 1, config.epochs + 1))
    if evaluates and is_chief(strategy):  # only the chief logs; no classifier if unused
        from gan_tf.evaluation import Evaluator, features_for

        features = features_for(source, seed=config.seed, inception_weights=config.inception_weights)
        evaluator = Evaluator(source, config.eval_samples, classifier=features, seed=config.seed)

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
            export_path = export_model(
                gan, export_dir, class_names=dataset_info.class_names or None, training_config=dataclasses.asdict(config)
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


def resume_from_checkpoints(model, checkpoints_dir):
    """Loads the newest checkpoint in `checkpoints_dir` that loads; returns `(epochs_done, path)`.

    A newer file that does not load (truncated, corrupt, not a checkpoint) is reported on stderr
    and skipped, never deleted; the previous one is used (`EpochCheckpoint` keeps two).

    Raises:
        ValueError: when none of them loads, naming each with its error. Nothing is overwritten.
    """
    import sys

    failures = []
    for epochs_done, path in reversed(gan_callbacks.list_checkpoints(checkpoints_dir)):
        try:
            model.load_weights(path)
        except Exception as error:  # a damaged zip, a missing entry, weights of another shape...
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            failures.append(f"{os.path.basename(path)}: {type(error).__name__}: {message[:200]}")
            print(f"Warning: checkpoint {path} does not load ({failures[-1]}); trying the one before it.",
                  file=sys.stderr)
            continue
        return epochs_done, path
    raise ValueError(
        f"None of the checkpoints in {checkpoints_dir} loads ({'; '.join(failures)}). They were left as "
        "they are: move them away or choose a new workdir to start fresh."
    )


def hparams_of(config, model):
    """The run's settings as TensorBoard's HParams dashboard records them: the config's fields
    that shape training, the model's own settings from its `get_config()` (every scalar
    constructor argument, defaults included), and the learning rate of each optimizer role."""
    ignored = {"data_dir", "workdir", "export_dir", "resume", "verbose", "model_args", "cache_dir",
               "d_learning_rate", "g_learning_rate"}
    hparams = {name: value for name, value in dataclasses.asdict(config).items() if name not in ignored}
    for name, value in model.get_config().items():
        if name == "name" or isinstance(value, dict):
            continue
        hparams[name] = "off" if value is None and name == "ema_decay" else value
    for role, optimizer in model.optimizer_roles().items():
        hparams[f"learning_rate_{role}"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    return hparams
