"""StackGAN: conditioning augmentation and its KL by the closed form, the matching-aware loss by
hand, the three stages (each updating only its own networks, resumable), captions in the export."""

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gan_tf.nn import likelihoods
from gan_tf.nn import losses
from gan_tf.models import StackGAN
from gan_tf.models.stackgan import augmentation_network
from gan_tf.data import open_source

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPTIONS = ["a band at the top left", "a band at the top right", "a band at the bottom left",
            "a band at the bottom right"]
VOCABULARY = ("a", "band", "at", "the", "top", "bottom", "left", "right")
TINY = dict(image_shape=(16, 16, 1), vocabulary=VOCABULARY, latent_dim=8, embedding_dim=16, condition_dim=8, width=8,
            seed=0)


def banded(count=128, seed=0):
    """16x16 images with a bright quadrant, and the caption naming it; `(dataset, quadrants)`."""
    rng = np.random.default_rng(seed)
    quadrants = rng.integers(0, 4, count)
    images = np.full((count, 16, 16, 1), -1.0, np.float32)
    for i, quadrant in enumerate(quadrants):
        row, column = divmod(int(quadrant), 2)
        images[i, 8 * row:8 * row + 8, 8 * column:8 * column + 8] = 1.0
    captions = np.array([CAPTIONS[q] for q in quadrants])
    dataset = tf.data.Dataset.from_tensor_slices(((images, captions), quadrants.astype(np.int32)))
    return dataset.shuffle(count, seed=seed).batch(16, drop_remainder=True), quadrants


def quadrant_of(images):
    """The brightest 8x8 quadrant of each 16x16 image (0 top left ... 3 bottom right)."""
    means = images[..., 0].reshape(-1, 2, 8, 2, 8).mean(axis=(2, 4)).reshape(-1, 4)
    return np.argmax(means, axis=1)


def test_conditioning_augmentation_and_its_kl_against_the_closed_form():
    augmentation = augmentation_network(6, 3, "ca")
    embedding = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    eps = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    condition, mean, log_variance = (np.asarray(x) for x in augmentation([embedding, eps]))
    np.testing.assert_allclose(condition, mean + np.exp(0.5 * log_variance) * eps, rtol=1e-5, atol=1e-6)
    model = StackGAN(**TINY)
    closed_form = 0.5 * np.sum(mean ** 2 + np.exp(log_variance) - 1.0 - log_variance, axis=1)
    np.testing.assert_allclose(likelihoods.gaussian_kl_divergence(mean, log_variance), closed_form, rtol=1e-5)
    # The model's term is per dimension of c (3 here), as the authors' code takes it.
    np.testing.assert_allclose(model.kl_term(mean, log_variance), closed_form / 3, rtol=1e-5)
    # KL(N(0, 1) || N(0, 1)) = 0; KL(N(1, e) || N(0, 1)) = 0.5 (1 + e - 1 - 1) per dimension, so
    # 0.5 (e - 1) for each of 8 such dimensions, and the same per dimension.
    np.testing.assert_allclose(model.kl_term(np.zeros((1, 8)), np.zeros((1, 8))), [0.0], atol=1e-7)
    np.testing.assert_allclose(model.kl_term(np.ones((1, 8)), np.ones((1, 8))), [0.5 * (math.e - 1)], rtol=1e-6)
    # Without augmentation c is the mean and there is no KL term.
    plain = StackGAN(**TINY, conditioning_augmentation=False)
    embedding_16, eps_8 = np.tile(embedding, (1, 3))[:, :16], np.tile(eps, (1, 3))[:, :8]
    condition, mean, _ = (np.asarray(x) for x in plain.augment(plain.augmentation_1, embedding_16, eps_8))
    np.testing.assert_allclose(condition, mean)
    np.testing.assert_array_equal(plain.kl_term(mean, mean), [0.0] * 4)


def test_matching_aware_loss_by_hand():
    zeros = np.zeros((2, 1), np.float32)
    log2 = math.log(2.0)  # BCE of a 0 logit, for either target
    np.testing.assert_allclose(losses.matching_aware_discriminator_loss(zeros, zeros, zeros, 1.0), [2 * log2] * 2,
                               rtol=1e-6)  # log2 + 0.5 log2 + 0.5 log2
    masked = losses.matching_aware_discriminator_loss(zeros, zeros, zeros, 1.0, wrong_mask=np.array([1.0, 0.0]))
    np.testing.assert_allclose(masked, [2 * log2, 1.5 * log2], rtol=1e-6)  # the second "wrong" text is the right one
    plain = losses.matching_aware_discriminator_loss(zeros, zeros, zeros + 5.0, 1.0, mismatch_weight=0.0)
    np.testing.assert_allclose(plain, [2 * log2] * 2, rtol=1e-6)  # the plain game ignores the wrong pairs
    confident = losses.matching_aware_discriminator_loss(np.full((1, 1), 20.0), np.full((1, 1), -20.0),
                                                         np.full((1, 1), -20.0), 1.0)
    np.testing.assert_allclose(confident, [0.0], atol=1e-6)


def _weights(networks):
    return [np.array(v) for network in networks for v in network.trainable_variables]


def test_the_three_stages_run_in_turn_each_updating_its_own_networks(tmp_path):
    model = StackGAN(**TINY, encoder_steps=2, stage1_steps=2)
    model.compile_optimizers({})
    dataset, _ = banded()
    groups = {"encoders": [model.text_encoder, model.image_encoder],
              "stage1": [model.stage1_generator, model.augmentation_1, model.stage1_discriminator],
              "stage2": [model.stage2_generator, model.augmentation_2, model.stage2_discriminator]}
    moved = []
    for _ in range(3):
        before = {name: _weights(networks) for name, networks in groups.items()}
        history = model.fit(dataset.repeat(), epochs=1, steps_per_epoch=2, verbose=0).history
        after = {name: _weights(networks) for name, networks in groups.items()}
        moved.append({name for name in groups if any(not np.array_equal(a, b) for a, b in zip(before[name], after[name]))})
        assert np.isfinite(history["stage"][0])
    assert moved == [{"encoders"}, {"stage1"}, {"stage2"}]
    assert int(model.train_steps) == 6 and int(model.optimizer.iterations) == 6
    assert {role: int(o.iterations) for role, o in model.optimizer_roles().items()} == {
        "encoder": 2, "stage1_discriminator": 2, "stage1_generator": 2, "stage2_discriminator": 2,
        "stage2_generator": 2}
    # A checkpoint taken in Stage I resumes in Stage I's place.
    path = str(tmp_path / "stackgan.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert int(restored.train_steps) == 6 and restored.stage_bounds() == (2, 4)
    assert int(restored.optimizer_roles()["stage2_generator"].iterations) == 2
    np.testing.assert_allclose(restored.generate(CAPTIONS[:2], seed=3), model.generate(CAPTIONS[:2], seed=3), atol=1e-5)


def test_stage1_learns_to_draw_what_the_caption_says():
    # Without augmentation (with it, the noise in c slows this small run down: 0.34 after the same steps).
    model = StackGAN(**TINY, encoder_steps=150, stage1_steps=10**6, conditioning_augmentation=False)
    model.compile_optimizers({})
    dataset, _ = banded(256)
    history = model.fit(dataset.repeat(), epochs=5, steps_per_epoch=150, verbose=0).history
    assert history["match_accuracy"][0] > 0.9  # the encoder stage (the first epoch)
    low, _ = model.generate(np.repeat(CAPTIONS, 16), seed=1, stage1=True)
    upsampled = np.repeat(np.repeat(low, 2, axis=1), 2, axis=2)
    assert np.mean(quadrant_of(upsampled) == np.repeat(np.arange(4), 16)) >= 0.8


def _write_banded_png(path, quadrant):
    """A 16x16 PNG, black but for the white 8x8 `quadrant` (0 top left ... 3 bottom right)."""
    image = np.zeros((16, 16), np.uint8)
    row, column = divmod(quadrant, 2)
    image[8 * row:8 * row + 8, 8 * column:8 * column + 8] = 255
    Image.fromarray(image).save(path)


def _caption_folder(tmp_path, count=8):
    lines = []
    for i in range(count):
        quadrant = i % 4
        _write_banded_png(tmp_path / f"{i}.png", quadrant)
        lines.append(json.dumps({"file": f"{i}.png", "captions": [CAPTIONS[quadrant], CAPTIONS[quadrant] + " corner"]}))
    (tmp_path / "captions.jsonl").write_text("\n".join(lines))
    return f"captions:{tmp_path}"


def test_train_exports_a_sampler_that_takes_caption_strings(tmp_path):
    from gan_tf.serving.sampling import caption_local
    from gan_tf.training import TrainConfig, train

    (tmp_path / "data").mkdir()
    spec = _caption_folder(tmp_path / "data")
    config = TrainConfig(model="stackgan", dataset=spec, epochs=3, batch_size=4, eval_every=0, channels=1,
                         model_args={"width": 4, "embedding_dim": 8, "condition_dim": 4, "latent_dim": 4},
                         workdir=str(tmp_path / "run"), export_dir=str(tmp_path / "export"), verbose=0)
    result = train(config)
    model = result.model
    assert set(model.vocabulary) == set(VOCABULARY) | {"corner"}
    assert int(model.train_steps) == 6 and model.stage_bounds() == (1, 3)  # 10% and 45% of 6 steps
    signatures = tf.saved_model.load(result.export_path).signatures
    outputs = signatures["serving_default"](captions=tf.constant(["a band at the top left", "a band at the bottom right"]),
                                            seed=tf.constant(5, tf.int64))
    assert outputs["images"].shape == (2, 16, 16, 1) and outputs["stage1_images"].shape == (2, 8, 8, 1)
    np.testing.assert_allclose(outputs["images"], model.generate(["a band at the top left", "a band at the bottom right"],
                                                                 seed=5), atol=1e-5)
    images = caption_local(result.export_path, ["a dark band"], seed=1)  # an unknown word is [UNK], not an error
    assert images.shape == (1, 16, 16, 1) and images.dtype == np.uint8
    for bad, message in (([""], "captions must be non-empty"), ([["a", "b"]], "captions must be a vector")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            signatures["serving_default"](captions=tf.constant(bad), seed=tf.constant(0, tf.int64))
    assert (tmp_path / "run" / "samples" / "epoch_0003.png").exists()


def test_stackgan_refuses_data_without_captions():
    with pytest.raises(ValueError, match="StackGAN makes captioned_images"):
        StackGAN.from_data(open_source("mnist_5k").info)


def _embedding_folder(tmp_path, count=8, per_image=2, dim=6):
    """Banded 16x16 images with `per_image` precomputed embeddings each (the quadrant one-hot
    plus a little noise) in `embeddings.npy`, and a captions.jsonl that lists the files only."""
    rng = np.random.default_rng(0)
    embeddings = rng.normal(0.0, 0.1, (count, per_image, dim)).astype(np.float32)
    lines = []
    for i in range(count):
        quadrant = i % 4
        _write_banded_png(tmp_path / f"{i}.png", quadrant)
        embeddings[i, :, quadrant] += 1.0
        lines.append(json.dumps({"file": f"{i}.png"}))
    (tmp_path / "captions.jsonl").write_text("\n".join(lines))
    np.save(tmp_path / "embeddings.npy", embeddings)
    return f"captions:{tmp_path}", embeddings


def test_precomputed_embeddings_train_export_and_generate(tmp_path):
    from gan_tf.serving.sampling import caption_local
    from gan_tf.training import TrainConfig, train

    (tmp_path / "data").mkdir()
    spec, embeddings = _embedding_folder(tmp_path / "data")
    source = open_source(spec)
    (images, given), _ = next(iter(source.dataset(4, seed=1)))
    assert given.dtype == tf.float32 and given.shape == (4, 6)
    pairs = {tuple(np.round(row, 5)) for row in embeddings.reshape(16, 6)}
    assert {tuple(np.round(row, 5)) for row in given.numpy()} <= pairs  # every row is one of the file's
    assert source.info.examples.embeddings.shape[1] == 6 and source.info.examples.vocabulary == ()

    config = TrainConfig(model="stackgan", dataset=spec, epochs=3, batch_size=4, eval_every=0, channels=1,
                         model_args={"width": 4, "condition_dim": 4, "latent_dim": 4},
                         workdir=str(tmp_path / "run"), export_dir=str(tmp_path / "export"), verbose=0)
    result = train(config)
    model = result.model
    assert model.precomputed_embeddings and model.embedding_dim == 6 and model.text_encoder is None
    # No encoder stage: Stage I takes the first half of the 6 steps, Stage II the rest.
    assert model.stage_bounds() == (0, 3) and "encoder" not in model.optimizer_roles()
    assert {role: int(o.iterations) for role, o in model.optimizer_roles().items()} == {
        "stage1_discriminator": 3, "stage1_generator": 3, "stage2_discriminator": 3, "stage2_generator": 3}
    restored = keras.saving.load_model(result.checkpoint_path)
    assert restored.precomputed_embeddings and restored.embedding_dim == 6

    signatures = tf.saved_model.load(result.export_path).signatures
    two = embeddings[:2, 0]
    outputs = signatures["serving_default"](embeddings=tf.constant(two), seed=tf.constant(5, tf.int64))
    assert outputs["images"].shape == (2, 16, 16, 1) and outputs["stage1_images"].shape == (2, 8, 8, 1)
    np.testing.assert_allclose(outputs["images"], model.generate(two, seed=5), atol=1e-5)
    for bad, message in ((np.zeros((2, 5), np.float32), r"embeddings must have shape \[N, 6\]"),
                         (np.zeros((6,), np.float32), r"embeddings must have shape \[N, 6\]"),
                         (np.full((1, 6), np.nan, np.float32), "embeddings must be finite")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            signatures["serving_default"](embeddings=tf.constant(bad), seed=tf.constant(0, tf.int64))
    assert caption_local(result.export_path, two, seed=5).shape == (2, 16, 16, 1)
    with pytest.raises(ValueError, match=r"takes text embeddings \[N, 6\]"):
        caption_local(result.export_path, ["a band"], seed=5)
    with pytest.raises(ValueError, match=r"This model takes text embeddings \[N, 6\]"):
        model.generate(["a band"])

    np.save(tmp_path / "query.npy", two)
    ran = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "generate.py"), f"--model_path={result.export_path}",
                          f"--embeddings={tmp_path / 'query.npy'}", "--num_samples=4", f"--output={tmp_path / 'grid.png'}",
                          "--seed=1"], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "Wrote 4 images of 2 embedding(s)" in ran.stdout and (tmp_path / "grid.png").exists()
    ran = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "generate.py"), f"--model_path={result.export_path}",
                          "--caption=a band", f"--output={tmp_path / 'no.png'}"], capture_output=True, text=True,
                         timeout=300)
    assert ran.returncode != 0 and "give --embeddings=FILE.npy" in ran.stderr and "Traceback" not in ran.stderr


@pytest.mark.parametrize("rows, per_image, message", [
    (7, 2, "has 7 rows but captions.jsonl lists 8 images"),
    (8, 0, "must be a float array"),
    (8, -1, "NaN or infinite"),
])
def test_bad_embedding_files_are_refused(tmp_path, rows, per_image, message):
    from gan_tf.data import DatasetError

    spec, embeddings = _embedding_folder(tmp_path)
    if per_image == -1:
        embeddings[3, 1, 2] = np.inf
    elif per_image == 0:
        embeddings = embeddings[:, :, :, None]
    np.save(tmp_path / "embeddings.npy", embeddings[:rows])
    with pytest.raises(DatasetError, match=message):
        open_source(spec)
