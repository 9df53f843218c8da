"""Captioned images (fashion_mnist_captions, captions:PATH) and the text encoder's matching loss."""

import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gan_tf.data import captions as caption_data
from gan_tf.nn import losses
from gan_tf.nn import text
from gan_tf.data import builtin as gan_data
from gan_tf.data import DatasetError
from gan_tf.data import open_source

_FASHION = pytest.mark.skipif(not os.path.isdir(gan_data.DEBIAN_FASHION_MNIST_DIR),
                              reason="Debian's dataset-fashion-mnist is not installed")


def test_properties_by_hand():
    image = np.zeros((1, 4, 4, 1), np.uint8)
    image[0, 1, 0, 0], image[0, 2, 2, 0] = 100, 200  # ink at columns 0 and 2
    image[0, 3, 3, 0] = caption_data.INK  # not above INK: background
    brightness, width = caption_data.measure_properties(image)
    np.testing.assert_allclose(brightness, [150.0])
    np.testing.assert_allclose(width, [1.0])  # columns 0 and 2 around their mean 1
    medians = (np.array([150.0, 0.0]), np.array([2.0, 0.0]))
    np.testing.assert_array_equal(caption_data.property_attributes(image, np.array([0]), medians), [[1, 0]])


def test_captions_by_hand():
    assert caption_data.write_captions([2], [[0, 1]]) == [
        ["a dark pullover", "a wide pullover", "a dark, wide pullover", "a pullover that is dark and wide"]]
    assert caption_data.write_captions([9], [[1, 0]])[0][3] == "an ankle boot that is light and narrow"
    assert caption_data.caption_for(9) == "an ankle boot"
    assert caption_data.caption_for(1, brightness=1) == "a light pair of trousers"


@_FASHION
def test_fashion_mnist_captions_say_what_the_pixels_show():
    source = open_source("fashion_mnist_captions")
    assert source.info.modality == "captioned_images" and source.num_examples == 60000
    assert source.held_out.num_examples == 10000 and len(source.captions[0]) == 4
    brightness, width = caption_data.measure_properties(source.images)
    for label in range(10):
        members = source.labels == label
        dark = members & (source.attributes[:, 0] == 0)
        narrow = members & (source.attributes[:, 1] == 0)
        assert 0.45 < np.mean(source.attributes[members, 0]) < 0.55  # each class split in halves
        assert brightness[dark].max() <= brightness[members & ~dark].min()
        assert width[narrow].max() <= width[members & ~narrow].min()
    dark_example = int(np.flatnonzero(source.attributes[:, 0] == 0)[0])
    assert "dark" in source.captions[dark_example][0]
    assert caption_data.CLASS_WORDS[source.labels[dark_example]] in source.captions[dark_example][0]
    # The held-out split is judged by the training split's medians: still about half each way.
    assert 0.45 < source.held_out.attributes.mean() < 0.55


def _folder(tmp_path, lines):
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((8, 8, 3), 40 if name == "a.png" else 200, np.uint8)).save(tmp_path / name)
    (tmp_path / "captions.jsonl").write_text("\n".join(lines) + "\n")
    return f"captions:{tmp_path}"


def test_captions_folder_yields_every_image_caption_pair_and_resumes(tmp_path):
    spec = _folder(tmp_path, [json.dumps({"file": "a.png", "captions": ["a dark square", "a black square"]}),
                              json.dumps({"file": "b.png", "captions": ["a bright square"]})])
    source = open_source(spec)
    assert source.info.image_shape == (8, 8, 3) and source.info.num_classes == 0
    batches = list(source.dataset(1, seed=3).as_numpy_iterator())
    pairs = sorted((caption[0].decode(), float(images[0, 0, 0, 0])) for (images, caption), _ in batches)
    dark, bright = 40 / 255 * 2 - 1, 200 / 255 * 2 - 1
    assert [caption for caption, _ in pairs] == ["a black square", "a bright square", "a dark square"]
    np.testing.assert_allclose([value for _, value in pairs], [dark, bright, dark], atol=1e-6)
    later = next(iter(source.dataset(1, seed=3, start_batch=2)))
    assert later[0][1].numpy()[0] == batches[2][0][1][0]  # a resumed stream continues with the same pairs


@pytest.mark.parametrize("lines, message", [
    (["{not json"], "captions.jsonl:1: not JSON"),
    ([json.dumps({"file": "a.png"})], 'captions.jsonl:1: each line needs "file"'),
    ([json.dumps({"file": "a.png", "captions": ["ok"]}), json.dumps({"file": "c.png", "captions": ["x"]})],
     "captions.jsonl:2: c.png does not exist"),
    ([json.dumps({"file": "a.png", "captions": [""]})], "non-empty strings"),
])
def test_bad_caption_files_are_refused_naming_the_line(tmp_path, lines, message):
    with pytest.raises(DatasetError, match=message):
        open_source(_folder(tmp_path, lines))


def test_a_folder_without_captions_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="no captions.jsonl"):
        open_source(f"captions:{tmp_path}")


def test_symmetric_matching_loss_by_hand():
    eye = np.eye(2, dtype=np.float32)
    loss = losses.symmetric_matching_loss(eye, eye, np.eye(2, dtype=bool), temperature=1.0)
    np.testing.assert_allclose(loss, [math.log(1 + math.exp(-1))] * 2, rtol=1e-6)  # -log(e / (e + 1))
    # Two images one caption fits equally: the targets are split, and uniform scores cost log 2.
    same = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
    np.testing.assert_allclose(losses.symmetric_matching_loss(same, same, np.ones((2, 2), bool)), [math.log(2)] * 2,
                               rtol=1e-6)
    # Scaling an embedding changes nothing (they are normalised); the wrong match costs more.
    scaled = losses.symmetric_matching_loss(3 * eye, eye, np.eye(2, dtype=bool), temperature=1.0)
    np.testing.assert_allclose(scaled, loss, rtol=1e-6)
    swapped = losses.symmetric_matching_loss(eye[::-1], eye, np.eye(2, dtype=bool), temperature=1.0)
    np.testing.assert_allclose(swapped, [math.log(1 + math.exp(1))] * 2, rtol=1e-6)


def test_same_caption_marks_identical_texts():
    positives = text.same_caption(tf.constant(["a dark coat", "a wide bag", "a dark coat"]))
    np.testing.assert_array_equal(positives, [[1, 0, 1], [0, 1, 0], [1, 0, 1]])


def _banded(count=256, seed=0):
    """Images with a bright band at the top or the bottom, on the left or the right, and captions
    that say which."""
    rng = np.random.default_rng(seed)
    where = rng.integers(0, 2, (count, 2))
    images = np.full((count, 16, 16, 1), -1.0, np.float32)
    captions = []
    for i, (bottom, right) in enumerate(where):
        images[i, 8 * bottom:8 * bottom + 8, 8 * right:8 * right + 8] = 1.0
        captions.append(f"a band at the {'bottom' if bottom else 'top'} {'right' if right else 'left'}")
    return tf.data.Dataset.from_tensor_slices(((images, captions), where[:, 0])).shuffle(256, seed=0).batch(32), captions


def test_joint_embedding_learns_which_caption_fits_which_image():
    dataset, captions = _banded()
    vectorizer = text.caption_vectorizer(captions)
    assert vectorizer.vocabulary_size() == 2 + 8  # padding, [UNK]; a band at the bottom top right left
    model = text.JointEmbedding(text.text_encoder(vectorizer, 16, 16), text.image_encoder((16, 16, 1), 16, 8))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(dataset.repeat(), epochs=3, steps_per_epoch=40, verbose=0).history
    assert history["match_loss"][-1] < history["match_loss"][0]
    assert history["match_accuracy"][-1] > 0.9  # chance: about 1/4 of each batch fits a caption
    queries = tf.constant(["a band at the top left", "a band at the bottom right"])
    probes = np.full((2, 16, 16, 1), -1.0, np.float32)
    probes[0, :8, :8], probes[1, 8:, 8:] = 1.0, 1.0
    scores = ops_scores(model.text_encoder(queries), model.image_encoder(probes))
    assert scores[0, 0] > scores[0, 1] and scores[1, 1] > scores[1, 0]


def ops_scores(text_embeddings, image_embeddings):
    t = tf.math.l2_normalize(text_embeddings, axis=-1)
    v = tf.math.l2_normalize(image_embeddings, axis=-1)
    return tf.matmul(t, v, transpose_b=True).numpy()


def test_image_models_refuse_captioned_data(tmp_path):
    from gan_tf.models import DCGAN

    source = open_source(_folder(tmp_path, [json.dumps({"file": "a.png", "captions": ["a dark square"]})]))
    with pytest.raises(ValueError, match="this dataset holds captioned_images"):
        DCGAN.from_data(source.info)
