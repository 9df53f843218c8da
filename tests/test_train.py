import gzip
import os
import struct
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from conftest import REPO_ROOT
from gan_tf.training import TrainConfig, train


def _scalar_tags(logdir):
    tags = set()
    for root, _, files in os.walk(logdir):
        if any(name.startswith("events.out") for name in files):
            accumulator = event_accumulator.EventAccumulator(root, size_guidance={event_accumulator.TENSORS: 0})
            accumulator.Reload()
            tags |= set(accumulator.Tags()["tensors"])
    return tags


@pytest.mark.parametrize("model", ["mlp_gan", "cgan"])
def test_train_leaves_samples_logs_checkpoint_and_export(tmp_path, model):
    config = TrainConfig(
        model=model,
        dataset="mnist_5k",
        epochs=2,
        steps_per_epoch=2,
        batch_size=16,
        latent_dim=8,
        workdir=str(tmp_path / "run"),
        export_dir=str(tmp_path / "export"),
        verbose=0,
    )
    result = train(config)

    assert sorted(os.listdir(result.samples_dir)) == ["epoch_0001.png", "epoch_0002.png"]
    assert {"epoch_d_loss", "epoch_g_loss", "epoch_d_real", "epoch_d_fake"} <= _scalar_tags(tmp_path / "run" / "logs")
    gan = keras.saving.load_model(result.checkpoint_path)
    assert int(gan.d_optimizer.iterations) == 4 and int(gan.g_optimizer.iterations) == 4
    assert result.export_path == str(tmp_path / "export" / "1")
    serve = tf.saved_model.load(result.export_path).signatures["serving_default"]
    inputs = {"z": tf.zeros((2, 8))}
    if model == "cgan":
        inputs["labels"] = tf.constant([0, 9])
    assert serve(**inputs)["images"].shape == (2, 28, 28, 1)
    assert len(result.history["d_loss"]) == 2


def test_same_seed_same_training(tmp_path):
    outputs = []
    for run in ("a", "b"):
        config = TrainConfig(
            model="mlp_gan", epochs=1, steps_per_epoch=3, batch_size=16, latent_dim=8, seed=7,
            workdir=str(tmp_path / run), export_dir=str(tmp_path / run / "export"), verbose=0,
        )
        outputs.append(train(config).model.generate(4, seed=0))
    np.testing.assert_array_equal(outputs[0], outputs[1])


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("model", "stylegan", "Unknown model 'stylegan'"),
        ("dataset", "imagenet", "Unknown dataset 'imagenet'"),
        ("batch_size", 0, "batch_size must be at least 1. Received: 0"),
        ("real_label", 0.0, r"real_label must be in \(0, 1\]. Received: 0.0"),
        ("d_steps", 0, "d_steps must be at least 1"),
        ("g_learning_rate", -1.0, "g_learning_rate must be positive"),
        ("mismatch_weight", -1.0, "mismatch_weight must be >= 0. Received: -1.0"),
        ("mismatch_weight", 1.0, "dcgan has no mismatch_weight: only cgan"),
    ],
)
def test_invalid_config_is_rejected_before_training(tmp_path, field, value, message):
    config = TrainConfig(workdir=str(tmp_path / "run"), **{field: value})
    with pytest.raises(ValueError, match=message):
        train(config)
    assert not os.path.exists(tmp_path / "run")


def _run_cli(*flags, cwd):
    return subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "train.py"), *flags],
        capture_output=True, text=True, cwd=cwd, timeout=300,
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--batch_size=0"], "train.py: error: batch_size must be at least 1. Received: 0"),
        (["--real_label=1.5"], "train.py: error: real_label must be in (0, 1]. Received: 1.5"),
        (["--model=stylegan"], "flag --model=stylegan: value should be one of <mlp_gan|dcgan|cgan|wgan_gp|sngan|acgan|sagan|biggan>"),
    ],
)
def test_cli_rejects_bad_flags_with_one_line_and_nonzero_exit(tmp_path, flags, message):
    completed = _run_cli(*flags, cwd=tmp_path)
    assert completed.returncode != 0
    assert message in completed.stderr
    assert not os.path.exists(tmp_path / "runs")


def test_cli_reports_a_truncated_data_file_by_name(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 100, 28, 28) + bytes(500))
    completed = _run_cli("--dataset=mnist", f"--data_dir={tmp_path}", "--epochs=1", cwd=tmp_path)
    assert completed.returncode == 1
    assert "train.py: error: Truncated or corrupt IDX file" in completed.stderr
    assert str(path) in completed.stderr and "Traceback" not in completed.stderr


def test_cli_trains_and_exports_with_defaults_for_output_paths(tmp_path):
    completed = _run_cli(
        "--model=mlp_gan", "--epochs=1", "--steps_per_epoch=2", "--latent_dim=8", cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert os.path.exists(tmp_path / "runs" / "mlp_gan" / "checkpoints" / "epoch_0001.keras")
    assert os.path.exists(tmp_path / "runs" / "mlp_gan" / "samples" / "epoch_0001.png")
    assert os.path.exists(tmp_path / "saved_models" / "mlp_gan" / "1" / "saved_model.pb")
    assert "Exported:   saved_models/mlp_gan/1" in completed.stdout
