"""PixelRNN (Row LSTM, Diagonal BiLSTM): skewing, causality at every pixel, an exact likelihood,
samplers that agree, training, export."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import assert_training_lowered_bits_per_dim, eight_bit_stripes
from gan_tf import PixelRNN
from gan_tf.data import DatasetInfo
from gan_tf.models.pixelrnn import skew, unskew
from gan_tf.serving.export import export_model
from gan_tf.serving.sampling import log_likelihood_local, sample_local

TINY = dict(filters=4, layers=2, seed=0)


def test_skew_shifts_row_i_right_by_i_and_unskew_undoes_it():
    maps = np.arange(1, 7, dtype=np.float32).reshape(1, 2, 3, 1)
    skewed = np.asarray(skew(maps))[0, :, :, 0]
    np.testing.assert_array_equal(skewed, [[1, 2, 3, 0], [0, 4, 5, 6]])  # column t: the diagonal i + j = t
    np.testing.assert_array_equal(np.asarray(unskew(skew(maps), 3)), maps)
    tall = np.random.default_rng(0).normal(size=(2, 5, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(unskew(skew(tall), 3)), tall)


def _gradient_map(model, position, image_shape):
    """|d (the logits at `position`) / d input|, over 16 random images."""
    images = tf.Variable(tf.random.uniform((16,) + image_shape, -1.0, 1.0, seed=1))
    with tf.GradientTape() as tape:
        logits = model.logits(images)[:, position[0], position[1]]
        total = tf.reduce_sum(logits * tf.random.normal(logits.shape, seed=2))
    return np.abs(tape.gradient(total, images).numpy()).sum(axis=(0, -1))


@pytest.mark.parametrize("recurrence", ["row_lstm", "diagonal_bilstm"])
def test_each_pixel_depends_only_on_the_pixels_before_it(recurrence):
    height, width = 6, 5
    model = PixelRNN(image_shape=(height, width, 2), recurrence=recurrence, **TINY)
    order = np.arange(height * width).reshape(height, width)
    for i, j in itertools.product(range(height), range(width)):
        gradient = _gradient_map(model, (i, j), (height, width, 2))
        assert np.all(gradient[order >= i * width + j] == 0.0), (i, j)  # the pixel itself and after it
        if recurrence == "diagonal_bilstm":
            # Its two directions see the whole context, rows above to the right included, but for
            # one pixel: the last of the row above enters the features only through the first
            # layer's 7-wide window (no pixel follows it in its row), so columns j < W - 4 miss it.
            earlier = order < i * width + j
            if i > 0 and j < width - 4:
                earlier[i - 1, width - 1] = False
                assert gradient[i - 1, width - 1] == 0.0, (i, j)
            assert np.all(gradient[earlier] > 0.0), (i, j)
        else:
            # The Row LSTM sees the row to its left and a triangle above (the row above up to j + 1 at two layers).
            for di, dj in ((0, -1), (0, -3), (-1, 0), (-1, 1), (-1, 3)):
                if 0 <= i + di < height and 0 <= j + dj < width:
                    assert gradient[i + di, j + dj] > 0.0, ((i, j), (di, dj))


def test_the_probabilities_of_every_possible_image_sum_to_one():
    """Exact: over all 256^2 images of 1 x 2 pixels, the model's probabilities sum to 1."""
    levels = np.stack(np.meshgrid(np.arange(256), np.arange(256), indexing="ij"), axis=-1).reshape(-1, 1, 2, 1)
    for recurrence in ("row_lstm", "diagonal_bilstm"):
        model = PixelRNN(image_shape=(1, 2, 1), recurrence=recurrence, **TINY)
        log_p = model.log_likelihood(levels.astype(np.uint8), batch_size=65536)["log_likelihood"]
        np.testing.assert_allclose(np.exp(log_p.astype(np.float64)).sum(), 1.0, rtol=1e-4)


@pytest.mark.parametrize("recurrence", ["row_lstm", "diagonal_bilstm"])
def test_the_cached_sampler_draws_the_naive_samplers_images(recurrence, monkeypatch):
    model = PixelRNN(image_shape=(6, 5, 2), recurrence=recurrence, **TINY)
    naive = model.sample(3, seed=4, sampler="naive").images

    def whole_network(*args, **kwargs):
        raise AssertionError("the cached sampler ran the whole network")

    monkeypatch.setattr(model, "logits", whole_network)  # it keeps states: never the whole image again
    cached = model.sample(3, seed=4).images
    np.testing.assert_array_equal(cached, naive)
    assert cached.shape == (3, 6, 5, 2) and not np.array_equal(cached, model.sample(3, seed=5).images)
    np.testing.assert_allclose(cached, np.round((cached + 1.0) * 127.5) / 127.5 - 1.0, atol=1e-6)  # on the 256 levels


@pytest.fixture(scope="module", params=["row_lstm", "diagonal_bilstm"])
def trained(request):
    keras.utils.set_random_seed(0)
    model = PixelRNN(recurrence=request.param, **TINY)
    model.compile_optimizers({"model": keras.optimizers.Adam(5e-3)})  # a tiny model: a larger step than the default
    history = model.fit(eight_bit_stripes().map(lambda images, labels: images), epochs=8, verbose=0)
    return model, history.history


def test_training_lowers_the_exact_bits_per_dim(trained):
    model, history = trained
    assert_training_lowered_bits_per_dim(history)


def test_export_samples_and_scores_as_the_keras_model(trained, tmp_path):
    model, _ = trained
    path = export_model(model, str(tmp_path / "export"))
    uint8 = sample_local(path, 2, seed=9)
    expected = model.sample(2, seed=9).images
    np.testing.assert_array_equal(uint8, np.round((expected + 1.0) * 127.5).astype(np.uint8))
    keras_side = model.log_likelihood(uint8)
    np.testing.assert_allclose(log_likelihood_local(path, uint8)["bits_per_dim"], keras_side["bits_per_dim"], rtol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"images_uint8 must have shape \(batch, 28, 28, 1\)"):
        tf.saved_model.load(path).signatures["log_likelihood"](images_uint8=tf.zeros((1, 8, 8, 1), tf.uint8),
                                                               seed=tf.constant(0, tf.int64))


def test_config_keras_file_and_from_data(trained, tmp_path):
    model, _ = trained
    assert PixelRNN.from_config(model.get_config()).get_config() == model.get_config()
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    images = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1)).astype(np.uint8)
    np.testing.assert_array_equal(loaded.log_likelihood(images)["log_likelihood"], model.log_likelihood(images)["log_likelihood"])
    assert PixelRNN.from_data(DatasetInfo((8, 6, 3), 10, tuple("abcdefghij")), **TINY).image_shape == (8, 6, 3)
    for bad, message in (({"recurrence": "gru"}, "recurrence"), ({"layers": 0}, "layers"), ({"filters": 0}, "filters")):
        with pytest.raises(ValueError, match=message):
            PixelRNN(**{**TINY, **bad})


def test_train_trains_and_exports_a_row_lstm(tmp_path):
    from gan_tf.training import TrainConfig, train

    config = TrainConfig(model="pixelrnn", epochs=1, steps_per_epoch=2, batch_size=8, eval_every=0, verbose=0,
                         model_args={"recurrence": "row_lstm", "filters": 4, "layers": 1},
                         workdir=str(tmp_path / "run"), export_dir=str(tmp_path / "export"))
    result = train(config)
    assert result.model.recurrence == "row_lstm" and int(result.model.optimizer.iterations) == 2
    assert (tmp_path / "run" / "samples" / "epoch_0001.png").exists()
    images = sample_local(result.export_path, 3, seed=0)
    assert images.shape == (3, 28, 28, 1) and images.dtype == np.uint8
