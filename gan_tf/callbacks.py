"""Keras callbacks for GAN training: sample grids, atomic checkpoints, and a NaN guard."""

import math
import os
import re
import tempfile

import keras
import numpy as np


def image_grid(images, value_range, columns):
    """Tiles images into one grid image with pixel values in [0, 1].

    Args:
        images: `[N, H, W, C]` in `value_range`.
        value_range: `(low, high)` of the images.
        columns: images per row; the last row is padded with black.

    Returns:
        `float32 [rows * H, columns * W, C]` in [0, 1].
    """
    images = np.asarray(images, dtype=np.float32)
    low, high = value_range
    images = np.clip((images - low) / (high - low), 0.0, 1.0)
    count, height, width, channels = images.shape
    rows = max(1, math.ceil(count / columns))
    padded = np.zeros((rows * columns, height, width, channels), dtype=np.float32)
    padded[:count] = images
    grid = padded.reshape(rows, columns, height, width, channels).transpose(0, 2, 1, 3, 4)
    return grid.reshape(rows * height, columns * width, channels)


def save_image(path, grid):
    """Writes a `[H, W, C]` image in [0, 1] (C = 1 or 3) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    if grid.shape[-1] == 1:
        plt.imsave(path, grid[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
    else:
        plt.imsave(path, grid)


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


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the whole GAN as `<directory>/epoch_NNNN.keras` after every epoch, atomically.

    The model is written to a temporary file in the same directory and renamed into place, so a
    crash mid-write never leaves a corrupt checkpoint under a checkpoint's name. The file name
    records how many epochs are done; `latest_checkpoint` finds the newest. The `keep` newest
    files are kept (more than one, so that resuming survives even a damaged last file).

    Args:
        directory: where checkpoints go.
        keep: how many of the newest checkpoints to keep.
    """

    def __init__(self, directory, keep=2):
        super().__init__()
        if keep < 1:
            raise ValueError(f"`keep` must be at least 1. Received: keep={keep}")
        self.directory = directory
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        save_model_atomically(self.model, checkpoint_path(self.directory, epoch + 1))
        for _, old in list_checkpoints(self.directory)[: -self.keep]:
            os.remove(old)


_CHECKPOINT_NAME = re.compile(r"^epoch_(\d+)\.keras$")


def checkpoint_path(directory, epochs_done):
    """The checkpoint file for `epochs_done` completed epochs."""
    return os.path.join(directory, f"epoch_{epochs_done:04d}.keras")


def list_checkpoints(directory):
    """`[(epochs_done, path), ...]` of the complete checkpoints in `directory`, oldest first."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = _CHECKPOINT_NAME.match(name)
        if match:
            found.append((int(match.group(1)), os.path.join(directory, name)))
    return sorted(found)


def latest_checkpoint(directory):
    """`(epochs_done, path)` of the newest checkpoint in `directory`, or None."""
    checkpoints = list_checkpoints(directory)
    return checkpoints[-1] if checkpoints else None


def write_atomically(path, write):
    """Calls `write(temporary)` on a temporary file beside `path`, then renames it to `path`.

    A crash mid-write never leaves a partial file under `path`. The temporary file keeps
    `path`'s extension, for writers that pick the format from it (`model.save`, `savefig`).
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=os.path.splitext(path)[1], dir=directory, prefix=".tmp-")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


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
                f"{described}. The last checkpoint (end of the previous epoch) is intact; "
                "try a lower learning rate."
            )
