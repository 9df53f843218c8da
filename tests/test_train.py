import gzip
import json
import os
import re
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
    tags = _scalar_tags(tmp_path / "run" / "logs")
    assert {"epoch_d_loss", "epoch_g_loss", "epoch_d_real", "epoch_d_fake", "samples"} <= tags
    assert "discriminator_view" not in tags  # no augmentation: D sees the images as they are
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
    "fields, message",
    [
        ({"model": "stylegan"}, "Unknown model 'stylegan'"),
        ({"dataset": "imagenet"}, "Unknown dataset 'imagenet'"),
        ({"batch_size": 0}, "batch_size must be at least 1. Received: 0"),
        ({"model_args": {"real_label": 0.0}}, r"`real_label` must be in \(0, 1\]. Received: real_label=0.0"),
        ({"model_args": {"d_steps": 0}}, "d_steps` must be at least 1"),
        ({"g_learning_rate": -1.0}, "g_learning_rate must be positive"),
        ({"model": "cgan", "model_args": {"mismatch_weight": -1.0}}, "mismatch_weight` must be >= 0. Received: mismatch_weight=-1.0"),
        ({"model": "dcgan", "model_args": {"mismatch_weight": 1.0}}, "dcgan has no argument 'mismatch_weight'"),
        ({"model": "wgan_gp", "model_args": {"real_label": 0.9}}, "wgan_gp has no argument 'real_label'"),
        ({"image_size": "0"}, "image_size must be two positive sizes"),
        ({"channels": 2}, "channels must be 1 or 3"),
        ({"max_image_pixels": 0}, "max_image_pixels must be at least 1. Received: 0"),
    ],
)
def test_invalid_config_is_rejected_before_training(tmp_path, fields, message):
    config = TrainConfig(workdir=str(tmp_path / "run"), **fields)
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
        (["--real_label=1.5"], "train.py: error: `real_label` must be in (0, 1]. Received: real_label=1.5"),
        (["--augment=color,flip"], "train.py: error: Unknown augmentations ['flip']: choose from ['color', "
                                   "'translation', 'cutout']. Received: 'color,flip'"),
        (["--model=lapgan", "--augment=color"], "train.py: error: lapgan has no argument 'augment'."),
        (["--model=stylegan"], "flag --model=stylegan: value should be one of <mlp_gan|dcgan|cgan|self_conditioned_gan|wgan_gp|sngan|acgan|"
                               "sagan|biggan|lapgan|pix2pix|cyclegan|srgan|stackgan|midinet|vae|cvae|pixelcnn|conditional_pixelcnn|"
                               "pixelrnn>"),
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
    assert re.search(r"^Time: \d+ s: setup \d+ s \(\d+%\), steps .* other \d+ s \(\d+%\)\.$", completed.stdout, re.M)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """64x64 RGB images in two class folders, JPEG and PNG mixed, one corrupt JPEG, one text file."""
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for label, name in enumerate(("circles", "squares")):
        os.makedirs(root / name)
        for index in range(6):
            image = rng.integers(0, 255, (64, 64, 3)).astype(np.uint8)
            Image.fromarray(image).save(root / name / f"{index}.{'jpg' if index % 2 else 'png'}")
    (root / "squares" / "corrupt.jpg").write_bytes((root / "squares" / "1.jpg").read_bytes()[:300])
    (root / "squares" / "README.txt").write_text("not an image")
    return root


@pytest.mark.parametrize("model", [None, "dcgan", "cgan"])
def test_cli_trains_on_a_folder_of_images_at_64(tmp_path, photo_folder, model):
    """None: the default model (the self-conditioned GAN, which clusters the folder's images)."""
    completed = _run_cli(
        *([f"--model={model}"] if model else []), f"--dataset=folder:{photo_folder}", "--image_size=64", "--epochs=1",
        "--batch_size=4", "--latent_dim=8", "--model_arg=width=4", "--eval_every=0", cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "12 images -> 64x64x3 (crop=center), 2 classes (circles, squares), 1 undecodable skipped" in completed.stdout
    assert "corrupt.jpg" in completed.stderr  # the warning names the skipped file
    export = tmp_path / "saved_models" / (model or "self_conditioned_gan") / "1"
    metadata = json.loads((export / "assets.extra" / "gan_tf_metadata.json").read_text())
    assert metadata["image_shape"] == [64, 64, 3]
    serve = tf.saved_model.load(str(export)).signatures["sample_seeded"]
    inputs = {"num_samples": tf.constant(3), "seed": tf.constant(0, tf.int64)}
    if model == "cgan":
        assert metadata["class_names"] == ["circles", "squares"] and metadata["num_classes"] == 2
        inputs["labels"] = tf.constant([1])
    assert serve(**inputs)["images"].shape == (3, 64, 64, 3)


def test_cli_model_arg_reaches_the_model_and_unknown_names_are_refused(tmp_path):
    completed = _run_cli("--model=wgan_gp", "--model_arg=no_such_knob=1", cwd=tmp_path)
    assert completed.returncode == 2
    assert "wgan_gp has no argument 'no_such_knob'. Its arguments:" in completed.stderr
    assert "gp_weight" in completed.stderr and "Traceback" not in completed.stderr
    completed = _run_cli("--model=wgan_gp", "--model_arg=gp_weight=5", "--model_arg=width=4", "--epochs=1",
                         "--augment=translation,cutout", "--steps_per_epoch=1", "--latent_dim=8", "--eval_every=0",
                         cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    config = json.loads((tmp_path / "saved_models" / "wgan_gp" / "1" / "assets.extra" / "gan_tf_metadata.json").read_text())
    assert config["training_config"]["model_args"] == {"gp_weight": 5, "width": 4, "augment": "translation,cutout"}
    checkpoint = keras.saving.load_model(str(tmp_path / "runs" / "wgan_gp" / "checkpoints" / "epoch_0001.keras"))
    assert checkpoint.gp_weight == 5.0 and checkpoint.width == 4
    assert checkpoint.augment == ("translation", "cutout")


@pytest.mark.parametrize("flags, message", [
    (["--dataset=folder:/no/such/folder"], "train.py: error: Image folder not found: /no/such/folder"),
    (["--dataset=pictures"], "train.py: error: Unknown dataset 'pictures'"),
    (["--image_size=big"], "train.py: error: image_size must be S or HxW"),
])
def test_cli_refuses_bad_data_flags_in_one_line(tmp_path, flags, message):
    completed = _run_cli(*flags, cwd=tmp_path)
    assert completed.returncode in (1, 2) and message in completed.stderr
    assert "Traceback" not in completed.stderr


def test_a_flat_folder_is_refused_by_a_conditional_model(tmp_path):
    from PIL import Image

    for index in range(4):
        Image.fromarray(np.full((8, 8), index * 60, np.uint8)).save(tmp_path / f"{index}.png")
    completed = _run_cli("--model=cgan", f"--dataset=folder:{tmp_path}", "--epochs=1", cwd=tmp_path)
    assert completed.returncode == 1
    assert "CGAN is conditional and needs labelled data" in completed.stderr and "Traceback" not in completed.stderr


def test_max_examples_trains_on_a_draw_and_judges_against_all_of_the_data(tmp_path, capsys):
    """With augmentation too: TensorBoard shows real images as D sees them."""
    config = TrainConfig(model="dcgan", dataset="mnist_5k", epochs=1, batch_size=16, latent_dim=8,
                         model_args={"width": 4, "augment": "translation,cutout"}, max_examples=48, eval_every=1, eval_samples=64,
                         workdir=str(tmp_path / "run"), export_dir=str(tmp_path / "export"), verbose=1)
    result = train(config)
    assert "training on a seeded draw of 48 of its 5,000 images" in capsys.readouterr().out
    gan = keras.saving.load_model(result.checkpoint_path)
    assert int(gan.g_optimizer.iterations) == 3  # an epoch is 48 // 16 steps
    # 64 samples judged: against all of the data (48 images would have capped it at 24).
    assert result.metrics["num_samples"] == 64 and "fid" in result.metrics["generated"]
    assert {"samples", "discriminator_view"} <= _scalar_tags(tmp_path / "run" / "logs" / "samples")
