"""Files written before the package layout changed still load, resume and serve.

`tests/fixtures/premove/` holds what the code of commit df4e05c wrote
(`tests/fixtures/make_premove_fixtures.py`): a DCGAN checkpoint written mid-epoch by a SIGTERM,
a CGAN SavedModel export, and a CycleGAN checkpoint after one epoch, each with the outputs that
code gave for fixed inputs. A user who trained with that code keeps all three.
"""

import json
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from gan_tf.serving.sampling import describe_model, sample_local
from gan_tf.training import TrainConfig, train

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "premove")


def _newest_checkpoint(name):
    checkpoints = os.path.join(FIXTURES, name, "checkpoints")
    return os.path.join(checkpoints, sorted(os.listdir(checkpoints))[-1])


def _resume(name, tmp_path, **overrides):
    """Trains on from a copy of the fixture's checkpoints, with the run's own config."""
    with open(os.path.join(FIXTURES, name, "config.json")) as f:
        config = json.load(f)
    workdir = tmp_path / "run"
    shutil.copytree(os.path.join(FIXTURES, name, "checkpoints"), workdir / "checkpoints")
    return train(TrainConfig(**{**config, **overrides, "workdir": str(workdir), "export_dir": str(tmp_path / "export")}))


def test_a_dcgan_checkpoint_written_mid_epoch_loads_and_resumes_at_its_step(tmp_path, capsys):
    expected = np.load(os.path.join(FIXTURES, "dcgan_mid_epoch", "expected.npz"))
    model = keras.saving.load_model(_newest_checkpoint("dcgan_mid_epoch"))
    assert int(model.g_optimizer.iterations) == int(expected["iterations"]) == 7
    np.testing.assert_allclose(model.generator(expected["z"], training=False), expected["images"], atol=1e-5)

    result = _resume("dcgan_mid_epoch", tmp_path)
    assert "(1 of 2 epochs done, 3 of 4 steps into epoch 2)" in capsys.readouterr().out
    assert int(result.model.g_optimizer.iterations) == 8  # the one step left of epoch 2
    assert np.isfinite(result.history["d_loss"]).all() and os.path.exists(result.export_path)


def test_a_cgan_export_serves_the_same_images_for_the_same_inputs():
    path = os.path.join(FIXTURES, "cgan_export")
    expected = np.load(os.path.join(FIXTURES, "cgan_export_expected.npz"))
    serving = tf.saved_model.load(path).signatures["serving_default"]
    outputs = serving(z=tf.constant(expected["z"]), labels=tf.constant(expected["labels"]))
    np.testing.assert_allclose(outputs["images"].numpy(), expected["out_images"], atol=1e-5)
    assert np.abs(outputs["images_uint8"].numpy().astype(int) - expected["out_images_uint8"]).max() <= 1

    assert describe_model(path)["conditional"] and describe_model(path)["num_classes"] == 10
    images = sample_local(path, 4, labels=[0, 3, 7, 9], seed=1)
    assert images.shape == (4, 28, 28, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, sample_local(path, 4, labels=[0, 3, 7, 9], seed=1))


def test_a_cyclegan_checkpoint_translates_as_before_and_trains_on(tmp_path):
    expected = np.load(os.path.join(FIXTURES, "cyclegan", "expected.npz"))
    model = keras.saving.load_model(_newest_checkpoint("cyclegan"))
    for name in ("generator_ab", "generator_ba"):
        np.testing.assert_allclose(getattr(model, name)(expected["images"], training=False), expected[name], atol=1e-5)

    result = _resume("cyclegan", tmp_path, epochs=2)
    assert all(int(optimizer.iterations) == 4 for optimizer in result.model.optimizer_roles().values())  # 2 more
    assert result.history and all(len(values) == 1 and np.isfinite(values).all() for values in result.history.values())
