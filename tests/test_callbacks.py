import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_batches
from gan_tf import CGAN, DCGAN, MLPGAN
from gan_tf.training.callbacks import (
    NonFiniteLossError,
    Position,
    RunCheckpoint,
    SampleGrid,
    StopOnNonFiniteLoss,
    image_grid,
    latest_checkpoint,
    sample_grid,
)


def test_image_grid_tiles_rows_and_pads_the_last_row():
    images = np.stack([np.full((2, 3, 1), v) for v in (-1.0, 0.0, 1.0)])
    grid = image_grid(images, (-1.0, 1.0), columns=2)
    assert grid.shape == (4, 6, 1)
    np.testing.assert_array_equal(grid[:2, :3], 0.0)
    np.testing.assert_array_equal(grid[:2, 3:], 0.5)
    np.testing.assert_array_equal(grid[2:, :3], 1.0)
    np.testing.assert_array_equal(grid[2:, 3:], 0.0)  # padding


def test_conditional_grid_rows_are_classes():
    gan = CGAN(latent_dim=8, seed=0)
    grid = sample_grid(gan, rows=3, columns=2, seed=5)
    labels = np.repeat(np.arange(3), 2)
    expected = image_grid(gan.generate(labels=labels, seed=5), gan.value_range, columns=2)
    np.testing.assert_array_equal(grid, expected)


def test_sample_grid_and_checkpoint_write_files_each_epoch(tmp_path):
    gan = MLPGAN(latent_dim=4, hidden_units=8, seed=0)
    gan.compile()
    gan.fit(
        tiny_batches(2, value_range=gan.value_range),
        epochs=3,
        verbose=0,
        callbacks=[SampleGrid(str(tmp_path / "samples"), rows=2, columns=3), RunCheckpoint(str(tmp_path / "ckpt"), steps_per_epoch=2)],
    )
    assert sorted(os.listdir(tmp_path / "samples")) == ["epoch_0001.png", "epoch_0002.png", "epoch_0003.png"]
    png = tf.io.decode_png(tf.io.read_file(str(tmp_path / "samples" / "epoch_0002.png")))
    assert png.shape[:2] == (2 * 28, 3 * 28)
    # The two newest are kept, and no temporary file is left.
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["epoch_0002.keras", "epoch_0003.keras"]
    epochs_done, path = latest_checkpoint(str(tmp_path / "ckpt"))
    assert epochs_done == Position(3, 0) and int(keras.saving.load_model(path).g_optimizer.iterations) == 6


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    gan = DCGAN(latent_dim=8, seed=0)
    gan.compile()
    good = tiny_batches(2)
    poisoned = tiny_batches(2).map(lambda images, labels: (images * np.nan, labels))
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 1: d_.*=nan"):
        gan.fit(
            good.concatenate(poisoned),
            epochs=2,
            steps_per_epoch=2,
            verbose=0,
            callbacks=[StopOnNonFiniteLoss(), RunCheckpoint(str(tmp_path), steps_per_epoch=2)],
        )
    assert latest_checkpoint(str(tmp_path))[0] == Position(1, 0)
    restored = keras.saving.load_model(latest_checkpoint(str(tmp_path))[1])
    assert int(restored.g_optimizer.iterations) == 2
    assert all(np.all(np.isfinite(np.array(v))) for v in restored.weights)
