"""Keras callbacks for training: sample grids, atomic step-level checkpoints, preemption, a NaN guard,
and the run's clock."""

import collections
import contextlib
import os
import re
import signal
import threading
import time

import keras
import numpy as np

from gan_tf.files import remove_temporary_files, write_atomically
from gan_tf.grids import image_grid, save_image
from gan_tf.training.distribute import any_worker


class RunClock:
    """Where a run's wall time goes: seconds by kind of work, each added by the part of the run that
    does it (`with clock.timing("checkpoints"): ...`); `split(total)` gives what no part claimed
    as "other" (Keras's own work between steps, logging, and any idle time).

    Example:
        >>> clock = RunClock()
        >>> with clock.timing("export"):
        ...     pass
        >>> sorted(clock.split(total=1.0))
        ['checkpoints', 'evaluation', 'export', 'other', 'previews', 'setup', 'steps']
    """

    KINDS = ("setup", "steps", "evaluation", "previews", "checkpoints", "export")

    def __init__(self):
        self.seconds = dict.fromkeys(self.KINDS, 0.0)

    @contextlib.contextmanager
    def timing(self, kind):
        if kind not in self.seconds:
            raise ValueError(f"Unknown kind of work {kind!r}. Choose one of: {', '.join(self.KINDS)}.")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[kind] += time.perf_counter() - start

    def split(self, total):
        """`{kind: seconds}` with "other": `total` less what the kinds claimed (at least 0)."""
        return {**self.seconds, "other": max(0.0, total - sum(self.seconds.values()))}


def timed(clock, kind):
    """`clock.timing(kind)`, or nothing to time when there is no clock."""
    return clock.timing(kind) if clock is not None else contextlib.nullcontext()


class StepClock(keras.callbacks.Callback):
    """Adds the time of each train call (from its `on_train_batch_begin` to its
    `on_train_batch_end`: the steps themselves, the first one's tracing included) to a
    `RunClock` as "steps". Put it first among the callbacks."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock
        self._began = None

    def on_train_batch_begin(self, batch, logs=None):
        self._began = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self._began is not None:
            self.clock.seconds["steps"] += time.perf_counter() - self._began
            self._began = None


def sample_grid(model, rows=10, columns=10, seed=1234):
    """A grid of `model.preview(rows, columns, seed)` (for class-conditional models, row k is
    class k).

    Returns:
        `float32 [rows * H, columns * W, C]` in [0, 1].
    """
    return image_grid(model.preview(rows, columns, seed), model.value_range, columns)


class SampleGrid(keras.callbacks.Callback):
    """Saves a PNG grid of samples from the same fixed noise after every epoch.

    Files are `<directory>/epoch_<NNNN>.png`; for conditional models row k shows class k.

    Args:
        directory: where the PNGs go.
        rows, columns: grid size (rows beyond the class count wrap around).
        seed: the fixed noise's seed, so grids of successive epochs are comparable.
    """

    def __init__(self, directory, rows=10, columns=10, seed=1234):
        super().__init__()
        self.directory = directory
        self.rows = rows
        self.columns = columns
        self.seed = seed

    def on_epoch_end(self, epoch, logs=None):
        grid = sample_grid(self.model, self.rows, self.columns, self.seed)
        save_image(os.path.join(self.directory, f"epoch_{epoch + 1:04d}.png"), grid)


Position = collections.namedtuple("Position", ["epochs", "steps"])
Position.__doc__ = """Where a run is: `epochs` complete, and `steps` train steps into the next one.
Positions order as tuples do, so the newest checkpoint is the largest."""


class TrainingPreempted(Exception):
    """Training stopped on SIGTERM or SIGINT after saving a checkpoint at the current step.

    Attributes:
        checkpoint: the path of the checkpoint it saved.
        position: its `Position`.
    """

    def __init__(self, message, checkpoint, position):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.position = position


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, workdir not writable, ...)."""


class PreemptionSignals:
    """Turns SIGTERM and SIGINT into a request to stop at the next step, for `RunCheckpoint`.

    Inside the `with` block, the first of those signals only sets `received` (its name): the
    train step under way finishes, `RunCheckpoint` saves a checkpoint at that step and stops the
    run with `TrainingPreempted`. A second signal stops at once (`KeyboardInterrupt`), with the
    checkpoints already written intact. Outside the main thread (where Python cannot install
    handlers) it does nothing.

    Example:
        >>> with PreemptionSignals() as preemption:
        ...     model.fit(data, callbacks=[RunCheckpoint("ckpt", steps_per_epoch, preemption=preemption)])
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.received = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info):
        self._restore()
        return False

    def _restore(self):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def _handle(self, number, frame):
        if self.received is not None:
            self._restore()
            raise KeyboardInterrupt(f"second signal ({signal.Signals(number).name}): stopping at once")
        self.received = signal.Signals(number).name


class RunCheckpoint(keras.callbacks.Callback):
    """Saves the whole model atomically at the end of every epoch, and within epochs, so that a
    run killed at any moment resumes at the step it had reached.

    Files are `<directory>/epoch_NNNN.keras` after N complete epochs, and
    `<directory>/epoch_NNNN_step_SSSSSS.keras` S train steps into epoch N + 1: every
    `every_steps` steps (counted from the start of training), every `every_seconds` seconds of
    training, and at the step a preemption signal arrived (`PreemptionSignals`), after which it
    raises `TrainingPreempted`. Each is written to a temporary file in the same directory and
    renamed into place, so a kill mid-write never leaves a damaged file under a checkpoint's
    name; the `keep` newest are kept. In a cluster every worker runs it (only the chief's
    directory is kept) and the workers agree after each step whether any of them received a
    signal or is due to save by its clock (`gan_tf.training.distribute.any_worker`), so that all
    stop, or save, at the same step. A checkpoint holds everything the run depends on: both
    networks, every optimizer (moments, iteration counts, and so learning-rate schedules), weight
    averages, every random stream and the epoch's running means (`GenerativeModel`); the data
    position is its name.

    Put it after the callbacks that log each epoch (CSV, TensorBoard): an epoch is then logged
    before its checkpoint exists, and a resumed run rewinds the logs to its checkpoint
    (`gan_tf.training.monitoring.rewind_logs`), so every epoch is logged once.

    Args:
        directory: where checkpoints go.
        steps_per_epoch: train steps in a whole epoch.
        every_steps: None, or also save every this many steps (a multiple of the steps per
            call, or it saves at the first call past each multiple).
        every_seconds: None, or also save when this many seconds passed since the last save.
        keep: how many of the newest checkpoints to keep (more than one, so that resuming
            survives even a damaged last file).
        start: the `Position` training starts from (a resumed run's checkpoint); the epoch it
            falls in has `steps_per_epoch - start.steps` steps left.
        restore_trackers: values of `model.tracker_variables()` to put back at the start of
            the epoch `start` falls in (`fit` zeroes them there): the running means of a
            resumed epoch then cover all of its steps.
        preemption: a `PreemptionSignals` to watch, or None.
        clock: a `RunClock` that the saves' time is added to ("checkpoints"), or None.
    """

    def __init__(self, directory, steps_per_epoch, every_steps=None, every_seconds=None, keep=2,
                 start=Position(0, 0), restore_trackers=None, preemption=None, clock=None):
        super().__init__()
        if keep < 1:
            raise ValueError(f"`keep` must be at least 1. Received: keep={keep}")
        if steps_per_epoch < 1:
            raise ValueError(f"`steps_per_epoch` must be at least 1. Received: steps_per_epoch={steps_per_epoch}")
        for name, value in (("every_steps", every_steps), ("every_seconds", every_seconds)):
            if value is not None and not value > 0:
                raise ValueError(f"`{name}` must be positive or None. Received: {name}={value}")
        self.directory = directory
        self.steps_per_epoch = int(steps_per_epoch)
        self.every_steps = every_steps
        self.every_seconds = every_seconds
        self.keep = keep
        self.start = Position(*start)
        self.restore_trackers = restore_trackers
        self.preemption = preemption
        self.clock = clock
        self._epoch = self.start.epochs
        self._last_saved_step = self.start.epochs * self.steps_per_epoch + self.start.steps
        self._last_save_time = None
        self._any_worker = any_worker(None)
        self._peer_signalled = False

    def on_train_begin(self, logs=None):
        if self._last_save_time is None:
            self._last_save_time = time.monotonic()
        self._any_worker = any_worker(self.model.distribute_strategy)
        remove_temporary_files(self.directory)  # left by a run killed mid-write
        if self._signalled():  # while loading data, building
            latest = latest_checkpoint(self.directory)
            raise TrainingPreempted(
                f"Stopped by {self._signal_name()} before training began; nothing new to save. "
                "Run the same command to start again.",
                checkpoint=latest[1] if latest else None, position=self.start,
            )

    def _signalled(self, *other_flags):
        """Whether a preemption signal reached this process or, in a cluster, any worker (then
        every worker sees it at the same call: `any_worker`); with `other_flags` agreed the same
        way, a list."""
        received = self.preemption is not None and self.preemption.received is not None
        flags = self._any_worker([received, *other_flags])
        self._peer_signalled = flags[0] and not received
        return flags if other_flags else flags[0]

    def _signal_name(self):
        return "a signal to another worker" if self._peer_signalled else self.preemption.received

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if epoch == self.start.epochs and self.start.steps and self.restore_trackers is not None:
            for variable, value in zip(self.model.tracker_variables(), self.restore_trackers):
                variable.assign(value)

    def _steps_into_epoch(self, batch):
        offset = self.start.steps if self._epoch == self.start.epochs else 0
        return offset + batch + 1

    def on_train_batch_end(self, batch, logs=None):
        steps = self._steps_into_epoch(batch)
        if steps >= self.steps_per_epoch:
            return  # the epoch's end saves
        position = Position(self._epoch, steps)
        global_step = self._epoch * self.steps_per_epoch + steps
        due_by_steps = self.every_steps and global_step // self.every_steps > self._last_saved_step // self.every_steps
        # The clocks of a cluster's workers differ: they save when any one's is due.
        signalled, due_by_time = self._signalled(
            self.every_seconds and time.monotonic() - self._last_save_time >= self.every_seconds)
        if signalled:
            self._stop(self._save(position), position)
        if due_by_steps or due_by_time:
            self._save(position)

    def on_epoch_end(self, epoch, logs=None):
        position = Position(epoch + 1, 0)
        path = self._save(position)
        if self._signalled():
            self._stop(path, position)

    def _save(self, position):
        path = checkpoint_path(self.directory, *position)
        try:
            with timed(self.clock, "checkpoints"):
                save_model_atomically(self.model, path)
        except OSError as error:
            newest = latest_checkpoint(self.directory)
            raise CheckpointWriteError(
                f"Cannot write checkpoint {path}: {error.strerror or error}. "
                + (f"The newest complete checkpoint, {newest[1]}, is intact." if newest else "No checkpoint was written yet.")
            ) from None
        self._last_saved_step = position.epochs * self.steps_per_epoch + position.steps
        self._last_save_time = time.monotonic()
        for _, old in list_checkpoints(self.directory)[: -self.keep]:
            os.remove(old)
        return path

    def _stop(self, path, position):
        raise TrainingPreempted(
            f"Stopped by {self._signal_name()} at epoch {position.epochs + 1 if position.steps else position.epochs}, "
            f"step {position.steps or self.steps_per_epoch}: saved {path}. Run the same command to continue from there.",
            checkpoint=path, position=position,
        )


_CHECKPOINT_NAME = re.compile(r"^epoch_(\d+)(?:_step_(\d+))?\.keras$")


def checkpoint_path(directory, epochs_done, steps=0):
    """The checkpoint file for `epochs_done` complete epochs and `steps` steps into the next."""
    if steps:
        return os.path.join(directory, f"epoch_{epochs_done:04d}_step_{steps:06d}.keras")
    return os.path.join(directory, f"epoch_{epochs_done:04d}.keras")


def list_checkpoints(directory):
    """`[(Position, path), ...]` of the complete checkpoints in `directory`, oldest first."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = _CHECKPOINT_NAME.match(name)
        if match:
            found.append((Position(int(match.group(1)), int(match.group(2) or 0)), os.path.join(directory, name)))
    return sorted(found)


def latest_checkpoint(directory):
    """`(Position, path)` of the newest checkpoint in `directory`, or None."""
    checkpoints = list_checkpoints(directory)
    return checkpoints[-1] if checkpoints else None


def save_model_atomically(model, path):
    """`model.save(path)` through a temporary file and `os.replace`."""
    write_atomically(path, model.save)


class NonFiniteLossError(FloatingPointError):
    """A logged loss became NaN or infinite during training."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training as soon as any logged value is NaN or infinite.

    Raises `NonFiniteLossError` naming the epoch, the step and the values, from the batch
    end, so no later callback (such as a checkpoint) sees the broken weights.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        bad = {}
        for name, value in (logs or {}).items():
            value = np.asarray(value, dtype=np.float64)
            if not np.all(np.isfinite(value)):
                bad[name] = float(value.reshape(-1)[0])
        if bad:
            described = ", ".join(f"{name}={value}" for name, value in sorted(bad.items()))
            raise NonFiniteLossError(
                f"Training diverged at epoch {getattr(self, '_epoch', 0) + 1}, step {batch + 1}: "
                f"{described}. The checkpoints written before it are intact; try a lower learning rate."
            )
