"""The gated PixelCNN: causality (no blind spot), an exact likelihood, two samplers that agree,
training, export."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import assert_training_lowered_bits_per_dim, eight_bit_stripes
from gan_tf import ConditionalPixelCNN, PixelCNN
from gan_tf.data import DatasetInfo
from gan_tf.models.autoregressive import gumbel_noise
from gan_tf.serving.export import export_model
from gan_tf.serving.sampling import log_likelihood_local, sample_local

TINY = dict(filters=4, layers=3, kernel_size=3, seed=0)


def _gradient_map(model, position, image_shape, labels=None):
    """|d (logits of every channel and level at `position`) / d input|, summed over input
    channels and over 32 random images (so that no input sits where a ReLU happens to be off)."""
    images = tf.Variable(tf.random.uniform((32,) + image_shape, -1.0, 1.0, seed=1))
    with tf.GradientTape() as tape:
        logits = model.logits(images, labels)[:, position[0], position[1]]
        total = tf.reduce_sum(logits * tf.random.normal(logits.shape, seed=2))
    return np.abs(tape.gradient(total, images).numpy()).sum(axis=(0, -1))


@pytest.mark.parametrize("channels", [1, 3])
def test_each_pixel_depends_only_on_the_pixels_before_it_with_no_blind_spot(channels):
    image_shape = (7, 7, channels)
    model = PixelCNN(image_shape=image_shape, **TINY)
    for i, j in itertools.product(range(7), range(7)):
        gradient = _gradient_map(model, (i, j), image_shape)
        later = np.arange(49).reshape(7, 7) >= i * 7 + j  # the pixel itself (type A) and after it
        assert np.all(gradient[later] == 0.0), (i, j)
        # The neighbours before it reach it, the one above-right too (the original PixelCNN's
        # masked 3x3 stack could not see it: its blind spot).
        for di, dj in ((0, -1), (-1, 0), (-1, -1), (-1, 1)):
            if 0 <= i + di < 7 and 0 <= j + dj < 7:
                assert gradient[i + di, j + dj] > 0.0, ((i, j), (di, dj))


@pytest.mark.parametrize("class_map_channels", [0, 2])
def test_the_probabilities_of_every_possible_image_sum_to_one(class_map_channels):
    """Exact: over all 256^2 images of 1 x 2 pixels, the model's probabilities sum to 1, with a
    per-class bias or a per-class map (a different bias at each position)."""
    model = ConditionalPixelCNN(image_shape=(1, 2, 1), num_classes=2, class_map_channels=class_map_channels, **TINY)
    levels = np.stack(np.meshgrid(np.arange(256), np.arange(256), indexing="ij"), axis=-1).reshape(-1, 1, 2, 1)
    for label in (0, 1):
        log_p = model.log_likelihood(levels.astype(np.uint8), {"labels": [label]}, batch_size=65536)["log_likelihood"]
        np.testing.assert_allclose(np.exp(log_p.astype(np.float64)).sum(), 1.0, rtol=1e-4)


@pytest.mark.parametrize("class_map_channels, guidance", [(0, 0.0), (2, 0.0), (2, 1.5)])
def test_the_cached_sampler_draws_the_naive_samplers_images(class_map_channels, guidance):
    model = ConditionalPixelCNN(image_shape=(6, 5, 2), num_classes=3, class_map_channels=class_map_channels,
                                label_dropout=0.1 if guidance else 0.0, guidance=guidance, **TINY)
    if class_map_channels:  # a map that differs by row and column, so a wrong row of it would show
        maps = model.class_maps.embeddings
        maps.assign(keras.random.normal(maps.shape, seed=0))
    conditions = {"labels": [0, 2, 1]}
    naive = model.sample(3, seed=4, conditions=conditions, sampler="naive").images
    cached = model.sample(3, seed=4, conditions=conditions, sampler="cached").images
    np.testing.assert_array_equal(cached, naive)
    assert not np.array_equal(cached, model.sample(3, seed=5, conditions=conditions).images)
    levels = np.round((cached + 1.0) * 127.5)
    np.testing.assert_allclose(cached, levels / 127.5 - 1.0, atol=1e-6)  # on the 256 levels
    with pytest.raises(ValueError, match="sampler"):
        model.sample(1, sampler="fast")



def _randomize_class_tables(model):
    """Class tables of N(0, 1) values and output logits 30 times larger, so that classes (and
    the "no class" row) move the logits by more than the Gumbel noise."""
    for index, weight in enumerate(model.weights):
        if weight.path.startswith(("class_bias", "class_maps")):
            weight.assign(keras.random.normal(weight.shape, seed=index))
    model.output_logits.kernel.assign(30.0 * model.output_logits.kernel)


def test_guided_sampling_draws_from_the_guided_logits():
    """Worked on one pixel, whose logits see no earlier pixel: the level drawn is
    argmax((1 + w) l(x | y) - w l(x | no class) + g), with g the Gumbel noise the seed draws; at
    w = 0, argmax(l(x | y) + g), the unguided draw."""
    model = ConditionalPixelCNN(image_shape=(1, 1, 1), num_classes=3, label_dropout=0.5, guidance=2.0, **TINY)
    _randomize_class_tables(model)
    labels = np.arange(64) % 3
    blank = np.zeros((64, 1, 1, 1), np.float32)
    conditional = model.logits(blank, labels)[:, 0, 0, 0].numpy()
    unconditional = model.logits(blank, np.full(64, 3))[:, 0, 0, 0].numpy()  # row 3: no class
    gumbel = gumbel_noise((64, 1, 1, 1, 256), 7)[:, 0, 0, 0].numpy()

    def drawn():
        images = model.sample(64, seed=7, conditions={"labels": labels}).images
        return np.round((images[:, 0, 0, 0] + 1.0) * 127.5).astype(int)

    guided = drawn()
    np.testing.assert_array_equal(guided, np.argmax(3.0 * conditional - 2.0 * unconditional + gumbel, axis=-1))
    model.guidance = 0.0
    plain = drawn()
    np.testing.assert_array_equal(plain, np.argmax(conditional + gumbel, axis=-1))
    assert np.mean(plain != guided) > 0.2  # guidance changes the draws (34% here)
    with pytest.raises(ValueError, match="guidance"):
        model.guidance = -1.0
    with pytest.raises(ValueError, match="label_dropout"):
        ConditionalPixelCNN(label_dropout=0.0, guidance=1.0, **TINY)


def test_label_dropout_replaces_that_share_of_labels_by_the_no_class_label():
    model = ConditionalPixelCNN(image_shape=(4, 4, 1), num_classes=3, label_dropout=0.25, **TINY)
    assert model.class_biases[0].embeddings.shape[0] == 4  # the classes' rows and the no-class row
    labels = np.arange(20000) % 3
    dropped = model.training_labels(labels).numpy()
    replaced = dropped != labels
    assert set(dropped[replaced]) == {3}
    assert abs(replaced.mean() - 0.25) < 0.01  # 3 standard errors: 0.009
    assert not np.array_equal(model.training_labels(labels).numpy(), dropped)  # the stream moves on
    twin = ConditionalPixelCNN(image_shape=(4, 4, 1), num_classes=3, label_dropout=0.25, **TINY)
    np.testing.assert_array_equal(twin.training_labels(labels).numpy(), dropped)  # seeded
    without = ConditionalPixelCNN(image_shape=(4, 4, 1), num_classes=3, label_dropout=0.0, guidance=0.0, **TINY)
    np.testing.assert_array_equal(without.training_labels(labels), labels)
    for bad, message in (({"label_dropout": 1.0}, "label_dropout"), ({"label_dropout": -0.1}, "label_dropout")):
        with pytest.raises(ValueError, match=message):
            ConditionalPixelCNN(**{**TINY, **bad})
    with pytest.raises(ValueError, match="num_classes"):
        PixelCNN(label_dropout=0.1, **TINY)


def test_class_tables_are_read_times_their_scale_so_adam_moves_them_that_much_faster():
    """`class_table_scale=s` stores the per-class tables divided by s: the model of s=1 with its
    tables divided by 10 is the same model at s=10, but one Adam step (which moves a stored
    number by about the learning rate whatever its gradient's size) moves what the gates read 10
    times as far."""
    batch = eight_bit_stripes().take(1)
    images, labels = next(iter(batch))
    uint8 = np.round((images.numpy() + 1.0) * 127.5).astype(np.uint8)
    tables = ("class_bias", "class_maps")
    moves = {}
    for scale in (1.0, 10.0):
        model = ConditionalPixelCNN(num_classes=4, class_map_channels=2, class_table_scale=scale, **TINY)
        if scale == 1.0:
            reference = model
        else:
            for weight, value in zip(model.weights, reference.get_weights()):
                weight.assign(value / scale if weight.path.startswith(tables) else value)
            np.testing.assert_allclose(model.log_likelihood(uint8, {"labels": labels.numpy()})["log_likelihood"],
                                       reference.log_likelihood(uint8, {"labels": labels.numpy()})["log_likelihood"],
                                       rtol=1e-5)
        before = {w.path: scale * w.numpy() for w in model.weights if w.path.startswith(tables)}
        model.compile_optimizers({"model": keras.optimizers.Adam(1e-3)})
        model.fit(batch, epochs=1, verbose=0)
        moves[scale] = np.concatenate([(scale * w.numpy() - before[w.path]).ravel()
                                       for w in model.weights if w.path in before])
    assert ConditionalPixelCNN().class_table_scale == 10.0 and PixelCNN().class_table_scale == 1.0
    moved = np.abs(moves[1.0]) > 1e-4  # the rows of the batch's classes
    assert moved.sum() > 100 and np.abs(moves[1.0]).max() < 5e-3
    ratios = moves[10.0][moved] / moves[1.0][moved]
    # Not exactly 10 for every number: Adam's epsilon weighs more against the smaller gradients
    # of s=1, and where a sparse gradient's repeated rows nearly cancel, rounding decides the step.
    assert 9.5 < np.median(ratios) < 10.5 and np.mean((ratios > 7.5) & (ratios < 13.0)) > 0.9, np.median(ratios)
    with pytest.raises(ValueError, match="class_table_scale"):
        ConditionalPixelCNN(class_table_scale=0, **TINY)


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    model = ConditionalPixelCNN(num_classes=4, filters=16, layers=4, kernel_size=3, seed=0)
    model.compile_optimizers(model.default_optimizers())
    history = model.fit(eight_bit_stripes(), epochs=8, verbose=0)
    return model, history.history


def test_training_lowers_the_exact_bits_per_dim(trained):
    model, history = trained
    assert_training_lowered_bits_per_dim(history)
    images, labels = next(iter(eight_bit_stripes().unbatch().batch(8)))
    uint8 = np.round((images.numpy() + 1.0) * 127.5).astype(np.uint8)
    right = model.log_likelihood(uint8, {"labels": labels.numpy()})["bits_per_dim"]
    wrong = model.log_likelihood(uint8, {"labels": (labels.numpy() + 1) % 4})["bits_per_dim"]
    assert right.mean() < wrong.mean()  # p(x | its class) above p(x | another class)


def test_export_samples_and_scores_as_the_keras_model(trained, tmp_path):
    model, _ = trained
    path = export_model(model, str(tmp_path / "export"))
    signatures = tf.saved_model.load(path).signatures
    seeded = signatures["sample_seeded"](num_samples=tf.constant(2), seed=tf.constant(9, tf.int64),
                                         labels=tf.constant([3, 1]))
    expected = model.sample(2, seed=9, conditions={"labels": [3, 1]}).images
    uint8 = seeded["images_uint8"].numpy()
    np.testing.assert_array_equal(uint8, np.round((expected + 1.0) * 127.5).astype(np.uint8))  # the same levels
    np.testing.assert_allclose(seeded["images"].numpy(), expected, atol=1e-6)
    served = signatures["log_likelihood"](images_uint8=tf.constant(uint8), seed=tf.constant(0, tf.int64),
                                          labels=tf.constant([3, 1]))
    keras_side = model.log_likelihood(uint8, {"labels": [3, 1]})
    np.testing.assert_allclose(served["log_likelihood"].numpy(), keras_side["log_likelihood"], rtol=1e-5)
    np.testing.assert_allclose(log_likelihood_local(path, uint8, [3, 1])["bits_per_dim"], keras_side["bits_per_dim"],
                               rtol=1e-5)
    np.testing.assert_array_equal(sample_local(path, 2, [3, 1], seed=9), uint8)
    # More than one request holds (64): asked in requests of 64, chunk k seeded seed + k, as Keras draws.
    many = sample_local(path, 66, [3, 1], seed=9)
    keras_many = model.sample(66, seed=9, conditions={"labels": np.resize([3, 1], 66)}).images
    np.testing.assert_array_equal(many, np.round((keras_many + 1.0) * 127.5).astype(np.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples must be <= 64"):
        signatures["sample"](num_samples=tf.constant(65), labels=tf.constant([0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be < num_classes=4"):
        signatures["sample"](num_samples=tf.constant(1), labels=tf.constant([4]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"images_uint8 must have shape \(batch, 28, 28, 1\)"):
        signatures["log_likelihood"](images_uint8=tf.zeros((1, 8, 8, 1), tf.uint8), seed=tf.constant(0, tf.int64),
                                     labels=tf.constant([0]))


def test_config_keras_file_and_from_data(trained, tmp_path):
    model, _ = trained
    assert ConditionalPixelCNN.from_config(model.get_config()).get_config() == model.get_config()
    # A config saved before the class map existed (no such key) means the bias alone.
    older = {key: value for key, value in model.get_config().items()
             if key not in ("class_map_channels", "class_table_scale", "label_dropout", "guidance")}
    assert model.class_map_channels == 4 and ConditionalPixelCNN.from_config(older).class_map_channels == 0
    assert model.class_table_scale == 10.0 and ConditionalPixelCNN.from_config(older).class_table_scale == 1.0
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    images = np.zeros((2, 28, 28, 1), np.uint8)
    np.testing.assert_array_equal(loaded.log_likelihood(images, {"labels": [0, 1]})["log_likelihood"],
                                  model.log_likelihood(images, {"labels": [0, 1]})["log_likelihood"])
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 8 * 8
    # The label dropout stream is saved where training left it (a resumed run drops the labels
    # the uninterrupted one would), not restarted from the seed.
    labels = np.arange(256) % 4
    fresh = ConditionalPixelCNN(num_classes=4, filters=16, layers=4, kernel_size=3, seed=0)
    dropped = loaded.training_labels(labels).numpy()
    np.testing.assert_array_equal(dropped, model.training_labels(labels).numpy())
    assert not np.array_equal(dropped, fresh.training_labels(labels).numpy())
    labelled = DatasetInfo((28, 28, 1), 10, tuple("abcdefghij"))
    assert PixelCNN.from_data(labelled, **TINY).num_classes is None
    assert ConditionalPixelCNN.from_data(labelled, **TINY).num_classes == 10
    for bad, message in (({"kernel_size": 4}, "odd"), ({"layers": 0}, "layers"), ({"filters": 0}, "filters")):
        with pytest.raises(ValueError, match=message):
            PixelCNN(**{**TINY, **bad})


def test_train_py_trains_and_exports_a_conditional_pixelcnn(tmp_path):
    import os
    import subprocess
    import sys

    from conftest import REPO_ROOT

    flags = ["--model=conditional_pixelcnn", "--epochs=1", "--steps_per_epoch=2", "--batch_size=8",
             "--model_arg=filters=4", "--model_arg=layers=2", "--eval_every=0", "--workdir=run", "--export_dir=export"]
    done = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "train.py"), *flags], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "samples" / "epoch_0001.png").exists()  # a 10x10 grid, row k = class k
    images = sample_local(str(tmp_path / "export" / "1"), 3, [7], seed=0)
    assert images.shape == (3, 28, 28, 1) and images.dtype == np.uint8
