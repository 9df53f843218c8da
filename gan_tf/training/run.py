"""`train(config)`: the one library function behind `train.py`.

It opens the data source and builds the model named by a `TrainConfig` (the model sized for the
data through the contract's `from_data`, its own settings from `model_args`), trains with
`model.fit` and the standard callbacks (progress bar; TensorBoard with losses, learning rates,
steps per second, sample grids, quality metrics every few epochs and the run's hparams; a sample
grid PNG, the loss curves and an atomic `.keras` checkpoint each epoch; a NaN guard), and
exports the model as a versioned SavedModel. It talks to the model only through
`gan_tf.models.generative.GenerativeModel`.
"""

import contextlib
import dataclasses
import json
import os
import time
import zipfile

import keras
import tensorflow as tf

from gan_tf.data.specs import open_source
from gan_tf.files import write_atomically
from gan_tf.metrics.evaluation import make_evaluator
from gan_tf.models import get_model_class
from gan_tf.models.generative import constructor_arguments
from gan_tf.serving.export import export_model
from gan_tf.training import callbacks as gan_callbacks, monitoring
from gan_tf.training.distribute import is_chief, make_strategy, output_dir
from gan_tf.training.workdir_lock import WorkdirLock

# The run's resolved TrainConfig, written into its workdir at every start (JSON).
RUN_CONFIG_FILE = "train_config.json"


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
class TrainResult:
    """What `train` leaves behind."""

    model: keras.Model
    history: dict
    export_path: str
    checkpoint_path: str
    samples_dir: str
    seconds: float
    metrics: dict = None  # the newest quality evaluation, if one ran
    time_split: dict = None  # where the run's wall time went: `RunClock.split`, seconds by kind of work


def build_model(config, dataset_info, total_steps=None):
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
    if total_steps:
        model.plan_training(int(total_steps))
    optimizers = model.default_optimizers()
    for kind, rate in (("discriminator", config.d_learning_rate), ("generator", config.g_learning_rate)):
        if rate is None:
            continue
        roles = [role for role in optimizers if kind in role]
        if not roles:
            raise ValueError(f"{config.model} has no {kind} optimizer (its roles: {', '.join(optimizers)}).")
        for role in roles:
            optimizers[role] = with_learning_rate(optimizers[role], rate)
    model.compile_optimizers(
        optimizers, steps_per_execution=config.steps_per_execution, jit_compile=config.jit_compile
    )
    return model


def with_learning_rate(optimizer, rate):
    """A new `optimizer` like this one whose learning rate starts at `rate`: a constant rate is
    replaced; a schedule keeps its shape from the new start (CycleGAN's constant-then-decay, or a
    Keras schedule with an `initial_learning_rate`).

    `--d_learning_rate` and `--g_learning_rate` set every optimizer role whose name has
    "discriminator" or "generator" in it: a GAN's one of each, CycleGAN's two of each, StackGAN's
    per stage.

    Raises:
        ValueError: for a schedule without a starting rate to set.
    """
    config = optimizer.get_config()
    if isinstance(config["learning_rate"], dict):  # a serialized LearningRateSchedule
        schedule = keras.saving.deserialize_keras_object(config["learning_rate"])
        schedule_config = schedule.get_config()
        start = next((key for key in ("learning_rate", "initial_learning_rate") if key in schedule_config), None)
        if start is None:
            raise ValueError(f"{type(schedule).__name__} has no starting learning rate to set to {rate}.")
        rate = type(schedule).from_config({**schedule_config, start: rate})
    return type(optimizer).from_config({**config, "learning_rate": rate})


def train(config, callbacks=()):
    """Trains the GAN `config` describes, resuming from its workdir, and exports its generator.

    Leaves in `config.workdir`: `logs/` (TensorBoard: `train/` losses, learning rates and
    steps per second; `samples/` a fixed-noise grid every epoch and the `quality/*` metrics
    every `eval_every` epochs on `eval_samples` samples; `real_floor/` the metrics' floors; the
    run's hparams and `time/*`, where its wall time went: `TrainResult.time_split`), `samples/epoch_NNNN.png` and `samples.png` (fixed-noise grids, the newest
    too), `history.csv` and `loss_curves.png`, `checkpoints/epoch_NNNN.keras` (the whole GAN,
    optimizers and noise stream included, after every epoch; the two newest are kept),
    `train_config.json` (the resolved config; a resumed run keeps its batch size); and the
    generator SavedModel under `config.export_dir/<version>/`. The quality metrics use the
    dataset's classifier (`gan_tf.metrics.evaluation`), trained and cached on first use.

    With `config.resume` (the default), a run whose workdir holds a checkpoint continues from
    the newest one that loads, at the step it was written: networks, optimizers, weight
    averages, random streams and the epoch's running means are restored, the data continue
    where they were (the stream is a function of the seed; `DataSource.dataset(start_batch=)`),
    and the logs (`history.csv`, TensorBoard) are rewound to the checkpoint, so each epoch is
    logged once. With `config.deterministic`, the resumed run's weights are then bit-identical
    to an uninterrupted run's (bench/faults.py). SIGTERM or SIGINT saves a checkpoint at the
    current step and raises `TrainingPreempted`.

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
        gan_tf.training.workdir_lock.WorkdirInUseError: when another live run holds the workdir.
        gan_tf.training.callbacks.NonFiniteLossError: when a loss becomes NaN or infinite.
        gan_tf.training.callbacks.TrainingPreempted: on SIGTERM or SIGINT, after saving a checkpoint.
        gan_tf.training.callbacks.CheckpointWriteError: when a checkpoint cannot be written (the earlier
            ones are intact).
    """
    config.validate()
    batch_size_given = config.batch_size is not None
    config = config.resolved()
    started_with = arguments_the_run_started_with(config)
    if started_with:
        config = dataclasses.replace(config, model_args={**started_with, **(config.model_args or {})})
    if not batch_size_given:
        config = dataclasses.replace(config, batch_size=batch_size_the_run_started_with(config))
    strategy = make_strategy(config.strategy, cpu_devices=config.cpu_devices)  # before any TF op
    clock, began = gan_callbacks.RunClock(), time.perf_counter()
    with _run_guards(config, strategy) as preemption:
        with clock.timing("setup"):
            if config.seed is not None:
                keras.utils.set_random_seed(config.seed)
            source, training_source = _open_data(config, strategy)
            steps_per_epoch = config.steps_per_epoch or training_source.num_examples // config.batch_size
            with strategy.scope():  # before the pipeline: a model that cannot use the data says so first
                model = build_model(config, training_source.info, total_steps=config.epochs * steps_per_epoch)
            if config.batch_size > training_source.num_examples:
                raise ValueError(f"batch_size {config.batch_size} is larger than the dataset "
                                 f"({training_source.num_examples} images).")
            start, trackers = _restore(model, config, steps_per_epoch)
        with clock.timing("evaluation"):  # the classifier, and the real data's features, once
            evaluator = _evaluator(config, strategy, source, start)
        with output_dir(config.workdir, strategy) as workdir:
            write_atomically(os.path.join(workdir, RUN_CONFIG_FILE),
                             lambda path: _write_json(path, dataclasses.asdict(config)))
            standard, samples_monitor = _standard_callbacks(config, model, workdir, evaluator, steps_per_epoch, start,
                                                            trackers, preemption, clock, training_source)
            history, seconds = _fit(model, config, strategy, training_source, steps_per_epoch, start,
                                    standard + list(callbacks))
            with clock.timing("export"), output_dir(config.export_dir, strategy) as export_dir:
                export_path = export_model(model, export_dir, class_names=source.info.class_names or None,
                                           training_config=dataclasses.asdict(config))
            time_split = clock.split(time.perf_counter() - began)
            monitoring.log_time_split(os.path.join(workdir, "logs"), time_split, step=config.epochs)
    latest = gan_callbacks.latest_checkpoint(os.path.join(config.workdir, "checkpoints"))
    return TrainResult(model=model, history=history, export_path=export_path if is_chief(strategy) else None,
                       checkpoint_path=latest[1] if latest else None,
                       samples_dir=os.path.join(config.workdir, "samples"), seconds=seconds,
                       metrics=samples_monitor.latest_metrics, time_split=time_split)


@contextlib.contextmanager
def _run_guards(config, strategy):
    """Holds the workdir (one process per workdir: the chief's; other workers write to temporary
    directories), turns op determinism on for this run only, and turns SIGTERM / SIGINT into a
    clean stop: before the first step if training has not begun, else after saving the current
    step; during the export, after it. Yields the `PreemptionSignals`."""
    # Op determinism is process-wide: on for this run only, as it was before the run after it.
    from tensorflow.python.framework import config as tf_config  # no public getter / disable in TF 2.21

    determinism_was_on = tf_config.is_op_determinism_enabled()
    lock = WorkdirLock(config.workdir).acquire() if is_chief(strategy) else None
    if config.deterministic and not determinism_was_on:
        tf.config.experimental.enable_op_determinism()
    try:
        with gan_callbacks.PreemptionSignals() as preemption:
            yield preemption
    finally:
        if lock is not None:
            lock.release()
        if config.deterministic and not determinism_was_on:
            tf_config.disable_op_determinism()


def _open_data(config, strategy):
    """`(the run's DataSource, the one it trains on)`: the same, or with `max_examples` a seeded
    draw of it (the metrics still judge against all of the data); the summary printed by the chief."""
    source = open_source(config.dataset, data_dir=config.data_dir, image_size=config.image_size,
                         channels=config.channels, crop=config.crop, cache_dir=config.cache_dir,
                         max_image_pixels=config.max_image_pixels)
    training_source = source if config.max_examples is None else source.subset(config.max_examples, config.seed)
    if config.verbose and is_chief(strategy):
        print(f"Data: {training_source.summary}.")
    return source, training_source


def arguments_the_run_started_with(config):
    """The model arguments of the run in `config.workdir`, read from its newest readable
    checkpoint, for those `config` does not set itself: a resumed run keeps the settings it
    started with when a default has changed since (`ema_decay` became on by default for every
    image GAN), and the flags given again still win. `{}` without checkpoints or `resume`."""
    if not config.resume:
        return {}
    for _, path in reversed(gan_callbacks.list_checkpoints(os.path.join(config.workdir, "checkpoints"))):
        try:
            with zipfile.ZipFile(path) as archive:
                saved = json.loads(archive.read("config.json"))["config"]
        except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile):
            continue  # resuming reports the damaged file
        model_class = get_model_class(config.model)
        saved = {**model_class.older_config_defaults, **saved}  # what an older version did not save
        valid, given = constructor_arguments(model_class), config.all_model_args()
        return {name: value for name, value in saved.items() if name in valid and name not in given}
    return {}


def batch_size_the_run_started_with(config):
    """`config.batch_size`, or, when the run in `config.workdir` resumes from a checkpoint, the
    batch size it started with (its `train_config.json`): a model's default batch size may
    change between versions, and a resumed run should not change its batches mid-run."""
    if not config.resume or gan_callbacks.latest_checkpoint(os.path.join(config.workdir, "checkpoints")) is None:
        return config.batch_size
    try:
        with open(os.path.join(config.workdir, RUN_CONFIG_FILE)) as f:
            return int(json.load(f)["batch_size"])
    except (OSError, KeyError, TypeError, ValueError):
        return config.batch_size  # a run started before the file was written: today's default


def _write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1)


def _restore(model, config, steps_per_epoch):
    """Restores the newest checkpoint of the workdir, if any: returns `(Position, tracker values
    or None)`, where training continues and the epoch's running means to put back."""
    checkpoints_dir = os.path.join(config.workdir, "checkpoints")
    latest = gan_callbacks.latest_checkpoint(checkpoints_dir)
    if latest is None:
        return gan_callbacks.Position(0, 0), None
    if not config.resume:
        raise ValueError(
            f"{checkpoints_dir} holds checkpoints of an earlier run; resume it (the default) or "
            "choose a new workdir. Nothing was overwritten."
        )
    start, path = resume_from_checkpoints(model, checkpoints_dir)
    trackers = [keras.ops.convert_to_numpy(variable) for variable in model.tracker_variables()]
    within = f", {start.steps} of {steps_per_epoch} steps into epoch {start.epochs + 1}" if start.steps else ""
    print(f"Resuming from {path} ({start.epochs} of {config.epochs} epochs done{within}).")
    if start.steps % config.steps_per_execution:
        raise ValueError(
            f"{path} was written {start.steps} steps into an epoch, which steps_per_execution="
            f"{config.steps_per_execution} does not divide; resume with the run's own --steps_per_execution."
        )
    return start, trackers


def _evaluator(config, strategy, source, start):
    """The data's evaluator when an epoch still to run is evaluated, on the chief (which alone
    logs); None otherwise, so that no classifier is trained for nothing."""
    evaluated = range(start.epochs + 1, config.epochs + 1)
    if not (config.eval_every and any(epoch % config.eval_every == 0 for epoch in evaluated)) or not is_chief(strategy):
        return None
    return make_evaluator(source, config.eval_samples, seed=config.seed, inception_weights=config.inception_weights)


def _standard_callbacks(config, model, workdir, evaluator, steps_per_epoch, start, trackers, preemption, clock,
                        source):
    """The callbacks every run has, writing under `workdir` (logs rewound to the checkpoint, so
    each epoch is logged once), timing their work on `clock`; returns them and the samples
    monitor (the newest metrics). 32 of `source`'s images show what D sees of real images."""
    logs_dir = os.path.join(workdir, "logs")
    history_csv = os.path.join(workdir, "history.csv")
    monitoring.rewind_logs(logs_dir, history_csv, start.epochs)  # what epochs after the checkpoint logged
    monitoring.log_hparams(logs_dir, hparams_of(config, model))
    samples_monitor = monitoring.TensorBoardSamples(
        os.path.join(logs_dir, "samples"), evaluator, config.eval_every,
        png_directory=os.path.join(workdir, "samples"), latest_png=os.path.join(workdir, "samples.png"),
        clock=clock, real_images=model.scaled(source.arrays(max_examples=32, seed=config.seed)[0]))
    standard = [
        gan_callbacks.StepClock(clock),  # first: its step times hold the steps alone
        gan_callbacks.StopOnNonFiniteLoss(),
        keras.callbacks.TensorBoard(logs_dir, write_steps_per_second=True),
        samples_monitor,
        keras.callbacks.CSVLogger(history_csv, append=True),
        monitoring.LossCurves(history_csv, os.path.join(workdir, "loss_curves.png")),
        # Last: an epoch is logged before its checkpoint exists (see RunCheckpoint).
        gan_callbacks.RunCheckpoint(
            os.path.join(workdir, "checkpoints"), steps_per_epoch, every_steps=config.checkpoint_every_steps,
            every_seconds=config.checkpoint_every_seconds, start=start, restore_trackers=trackers,
            preemption=preemption, clock=clock),
    ]
    return standard, samples_monitor


def _fit(model, config, strategy, source, steps_per_epoch, start, callbacks):
    """`model.fit` from `start` to `config.epochs` (an epoch resumed mid-way is its own call, with
    the steps it has left); returns the history of every epoch run and the seconds they took."""

    def batches_from(epoch, steps=0):
        """The data stream from step `steps` of epoch `epoch` on (a function of the seed)."""
        dataset = source.dataset(config.batch_size, value_range=model.value_range, seed=config.seed,
                                 repeat=True, start_batch=epoch * steps_per_epoch + steps)
        options = tf.data.Options()
        # Each worker takes its share of the batches (in-memory data have no files to shard by).
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return dataset.with_options(options)

    segments = [(start.epochs, start.epochs + 1, steps_per_epoch - start.steps, start.steps)] if start.steps else []
    segments.append((start.epochs + 1 if start.steps else start.epochs, config.epochs, steps_per_epoch, 0))
    history, start_time = {}, time.time()
    for initial_epoch, epochs, steps, offset in segments:
        if initial_epoch >= epochs:
            continue
        segment = model.fit(batches_from(initial_epoch, offset), initial_epoch=initial_epoch, epochs=epochs,
                            steps_per_epoch=steps, callbacks=callbacks, shuffle=False,  # the pipeline shuffles
                            verbose=config.verbose if is_chief(strategy) else 0)
        for name, values in segment.history.items():
            history.setdefault(name, []).extend(values)
    return history, time.time() - start_time


def resume_from_checkpoints(model, checkpoints_dir):
    """Loads the newest checkpoint in `checkpoints_dir` that loads; returns `(Position, path)`.

    A newer file that does not load (truncated, corrupt, not a checkpoint) is reported on stderr
    and skipped, never deleted; the previous one is used (`RunCheckpoint` keeps two).

    Raises:
        ValueError: when none of them loads, naming each with its error. Nothing is overwritten.
    """
    import sys

    failures = []
    for position, path in reversed(gan_callbacks.list_checkpoints(checkpoints_dir)):
        try:
            model.load_weights(path)
        except Exception as error:  # a damaged zip, a missing entry, weights of another shape...
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            failures.append(f"{os.path.basename(path)}: {type(error).__name__}: {message[:200]}")
            print(f"Warning: checkpoint {path} does not load ({failures[-1]}); trying the one before it.",
                  file=sys.stderr)
            continue
        return position, path
    raise ValueError(
        f"None of the checkpoints in {checkpoints_dir} loads ({'; '.join(failures)}). They were left as "
        "they are: move them away or choose a new workdir to start fresh."
    )


def hparams_of(config, model):
    """The run's settings as TensorBoard's HParams dashboard records them: the config's fields
    that shape training, the model's own settings from its `get_config()` (every scalar
    constructor argument, defaults included), and the learning rate of each optimizer role."""
    ignored = {"data_dir", "workdir", "export_dir", "resume", "verbose", "model_args", "cache_dir",
               "d_learning_rate", "g_learning_rate", "checkpoint_every_steps", "checkpoint_every_seconds"}
    hparams = {name: value for name, value in dataclasses.asdict(config).items() if name not in ignored}
    for name, value in model.get_config().items():
        if name == "name" or isinstance(value, dict):
            continue
        hparams[name] = "off" if value is None and name in ("ema_decay", "augment", "ada_target", "r1_weight") else value
    for role, optimizer in model.optimizer_roles().items():
        hparams[f"learning_rate_{role}"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    return hparams
