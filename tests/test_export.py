import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from gan_tf import CGAN, DCGAN, MLPGAN
from gan_tf.serving.export import existing_versions, export_generator
from gan_tf.serving.sampling import newest_version


def test_export_loads_and_serves_the_generator(tmp_path):
    gan = DCGAN(latent_dim=8, seed=0)
    path = export_generator(gan, str(tmp_path))
    assert path == str(tmp_path / "1")
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    assert os.listdir(tmp_path) == ["1"]  # no temporary directory left behind

    serve = tf.saved_model.load(path).signatures["serving_default"]
    z = tf.random.normal((3, 8), seed=1)
    outputs = serve(z=z)
    assert outputs["images"].shape == (3, 28, 28, 1) and outputs["images"].dtype == tf.float32
    assert outputs["images_uint8"].dtype == tf.uint8
    expected = gan.generator(z, training=False).numpy()
    np.testing.assert_allclose(outputs["images"].numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(outputs["images_uint8"].numpy(), np.round((expected + 1) / 2 * 255).astype(np.uint8))


def test_exports_take_the_next_version_and_never_overwrite(tmp_path):
    gan = MLPGAN(latent_dim=4, hidden_units=8, seed=0)
    os.makedirs(tmp_path / "7")
    open(tmp_path / "7" / "keep.txt", "w").write("an existing version")
    assert export_generator(gan, str(tmp_path)) == str(tmp_path / "8")
    assert export_generator(gan, str(tmp_path)) == str(tmp_path / "9")
    assert existing_versions(str(tmp_path)) == [7, 8, 9]
    assert open(tmp_path / "7" / "keep.txt").read() == "an existing version"


def test_an_exports_base_path_names_its_newest_version(tmp_path):
    for version in ("2", "10", "9"):
        os.makedirs(tmp_path / "base" / version)
    os.makedirs(tmp_path / "base" / "tmp-export")  # not a version
    assert newest_version(str(tmp_path / "base")) == str(tmp_path / "base" / "10")
    version_dir = str(tmp_path / "base" / "10")
    assert newest_version(version_dir) == version_dir  # no versions under it: unchanged
    os.makedirs(tmp_path / "empty")
    assert newest_version(str(tmp_path / "empty")) == str(tmp_path / "empty")
    assert newest_version(str(tmp_path / "nowhere")) == str(tmp_path / "nowhere")
    assert newest_version("runs/dcgan/checkpoints/epoch_0020.keras") == "runs/dcgan/checkpoints/epoch_0020.keras"


def test_cgan_export_takes_labels(tmp_path):
    gan = CGAN(latent_dim=8, num_classes=10, seed=0)
    serve = tf.saved_model.load(export_generator(gan, str(tmp_path))).signatures["serving_default"]
    z = tf.random.normal((2, 8), seed=1)
    labels = tf.constant([3, 7], tf.int32)
    images = serve(z=z, labels=labels)["images"].numpy()
    np.testing.assert_allclose(images, gan([z, labels]).numpy(), atol=1e-6)


def test_export_is_valid_for_saved_model_cli(tmp_path):
    path = export_generator(MLPGAN(latent_dim=4, hidden_units=8, seed=0), str(tmp_path))
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli):
        pytest.fail(f"saved_model_cli not found next to {sys.executable}")
    shown = subprocess.run([cli, "show", "--all", "--dir", path], capture_output=True, text=True, check=True).stdout
    assert "serving_default" in shown and "images_uint8" in shown and "(-1, 4)" in shown
