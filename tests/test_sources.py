import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gan_tf import CGAN, DCGAN
from gan_tf.data import builtin as data
from gan_tf.data import DatasetError, DatasetInfo, check_spec, open_source, parse_image_size
from gan_tf.data.source import convert_channels


def write_image(path, array, image_format=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    array = np.asarray(array, np.uint8)
    Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array).save(path, format=image_format)


def solid(value, height=24, width=24, channels=3):
    return np.full((height, width, channels), value, np.uint8)


@pytest.fixture
def class_folder(tmp_path):
    """Two classes in sub-folders (one nested deeper), JPEG and PNG mixed, grey and RGB mixed,
    one truncated JPEG, one text file."""
    root = tmp_path / "photos"
    write_image(str(root / "cats" / "a.png"), solid(10))
    write_image(str(root / "cats" / "b.jpg"), solid(20))
    write_image(str(root / "cats" / "more" / "c.png"), solid(30, channels=1))  # greyscale
    write_image(str(root / "dogs" / "d.png"), solid(200))
    write_image(str(root / "dogs" / "e.bmp"), solid(210))
    write_image(str(root / "dogs" / "f.webp"), solid(220), image_format="WEBP")
    full = (root / "dogs" / "e.bmp").read_bytes()
    write_image(str(root / "dogs" / "g.jpg"), np.random.default_rng(0).integers(0, 255, (24, 24, 3)))
    (root / "dogs" / "broken.jpg").write_bytes((root / "dogs" / "g.jpg").read_bytes()[:200])
    (root / "dogs" / "notes.txt").write_text("not an image")
    assert full
    return root


def test_class_sub_folders_are_the_sorted_classes(class_folder, caplog):
    with caplog.at_level(logging.WARNING):
        source = open_source(f"folder:{class_folder}", image_size=16)
    assert source.info.class_names == ("cats", "dogs") and source.info.num_classes == 2
    assert source.info.image_shape == (16, 16, 3)  # mixed grey and RGB: RGB
    assert source.num_examples == 7 and source.in_memory
    assert sorted(source.labels.tolist()) == [0, 0, 0, 1, 1, 1, 1]
    # The corrupt file is skipped with a warning naming it; the text file is ignored.
    assert "skipped 1 image file" in caplog.text and "broken.jpg" in caplog.text
    assert "1 undecodable skipped" in source.summary and "1 non-image files ignored" in source.summary
    assert "decoded into memory" in source.summary
    # The grey PNG became three equal channels; solid colours survive resizing.
    by_value = {int(image[0, 0, 0]): image for image in source.images}
    assert set(by_value) >= {10, 30, 200, 210, 220}
    assert np.all(by_value[30] == 30)
    images, labels = next(iter(source.dataset(4, value_range=(-1.0, 1.0), seed=0)))
    assert images.shape == (4, 16, 16, 3) and images.dtype == tf.float32 and labels.dtype == tf.int32
    assert float(tf.reduce_min(images)) >= -1.0 and float(tf.reduce_max(images)) <= 1.0


def test_a_flat_folder_is_unlabelled_and_refused_by_a_conditional_model(tmp_path):
    for index in range(4):
        write_image(str(tmp_path / f"{index}.png"), solid(index * 50, 8, 8))
    write_image(str(tmp_path / "sub" / "x.png"), solid(1, 8, 8))  # one in a sub-folder: still flat
    source = open_source(f"folder:{tmp_path}")
    assert source.info.num_classes == 0 and source.info.class_names == ()
    assert source.info.image_shape == (8, 8, 3)  # native size, all agree
    assert DCGAN.from_data(source.info, latent_dim=4, seed=0).image_shape == (8, 8, 3)
    with pytest.raises(ValueError, match="CGAN is conditional and needs labelled data.*no labels"):
        CGAN.from_data(source.info, latent_dim=4)


def test_all_greyscale_gives_one_channel_and_channels_convert_either_way(tmp_path):
    write_image(str(tmp_path / "a" / "1.png"), solid(90, channels=1))
    write_image(str(tmp_path / "b" / "2.png"), solid(180, channels=1))
    assert open_source(f"folder:{tmp_path}").info.image_shape == (24, 24, 1)
    rgb = open_source(f"folder:{tmp_path}", channels=3)
    assert rgb.info.image_shape == (24, 24, 3) and np.all(rgb.images[rgb.labels == 0] == 90)


def test_rgb_to_grey_uses_luma_weights():
    image = tf.constant([[[100, 50, 200]]], tf.uint8)
    grey = convert_channels(image, 1)
    assert grey.shape == (1, 1, 1) and int(grey[0, 0, 0]) == round(0.299 * 100 + 0.587 * 50 + 0.114 * 200)
    rgba = tf.constant([[[1, 2, 3, 255]]], tf.uint8)
    assert convert_channels(rgba, 3).numpy().tolist() == [[[1, 2, 3]]]


def test_non_square_sources_are_cropped_at_the_centre_or_stretched(tmp_path):
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[:, :15] = 255  # the left quarter white, the rest black
    write_image(str(tmp_path / "wide.png"), wide)
    centre = open_source(f"folder:{tmp_path}", image_size=10).images[0]
    assert centre.shape == (10, 10, 3) and centre.max() == 0  # the centre third is black
    stretched = open_source(f"folder:{tmp_path}", image_size="10x12", crop="none").images[0]
    assert stretched.shape == (10, 12, 3)
    assert stretched[:, :2].min() == 255 and stretched[:, -5:].max() == 0  # the whole width is kept


def test_mixed_sizes_without_image_size_name_the_sizes(tmp_path):
    write_image(str(tmp_path / "a.png"), solid(1, 8, 8))
    write_image(str(tmp_path / "b.png"), solid(1, 12, 16))
    with pytest.raises(DatasetError, match=r"2 sizes \(8x8, 12x16\).*--image_size"):
        open_source(f"folder:{tmp_path}")


@pytest.mark.parametrize("setup, message", [
    ("missing", "Image folder not found"),
    ("empty", "No image files .* holds nothing"),
    ("text_only", "No image files .* 1 files, none of them an image"),
    ("all_corrupt", "None of the 1 image files .* decodes"),
    ("a_file", "Not a folder"),
])
def test_bad_folders_are_refused_with_what_and_where(tmp_path, setup, message):
    root = tmp_path / "data"
    if setup != "missing" and setup != "a_file":
        root.mkdir()
    if setup == "text_only":
        (root / "readme.txt").write_text("hello")
    if setup == "all_corrupt":
        (root / "x.png").write_bytes(b"not a png at all")
    if setup == "a_file":
        root.write_text("a file")
    with pytest.raises(DatasetError, match=message) as error:
        open_source(f"folder:{root}")
    assert str(root) in str(error.value)


def test_streaming_path_yields_the_same_images_as_the_in_memory_path(class_folder, tmp_path):
    in_memory = open_source(f"folder:{class_folder}", image_size=8)
    cache = tmp_path / "cache"
    streaming = open_source(f"folder:{class_folder}", image_size=8, in_memory=False, cache_dir=str(cache))
    assert not streaming.in_memory and "streaming from disk" in streaming.summary
    batches = list(streaming.dataset(7, value_range=(0.0, 255.0), seed=0).as_numpy_iterator())
    assert len(batches) == 1
    streamed = np.round(batches[0][0]).astype(np.uint8)
    key = lambda images: sorted(image.tobytes() for image in images)  # noqa: E731
    assert key(streamed) == key(in_memory.images)
    assert sorted(batches[0][1].tolist()) == sorted(in_memory.labels.tolist())
    assert any(name.startswith("gan_tf-") for name in os.listdir(cache))  # the decoded-image cache
    repeated = streaming.dataset(3, seed=0, repeat=True).take(5)  # more batches than one epoch holds
    assert sum(1 for _ in repeated) == 5
    with pytest.raises(ValueError, match="larger than the dataset"):
        streaming.dataset(8)


def test_memory_limit_chooses_the_path(class_folder):
    assert not open_source(f"folder:{class_folder}", image_size=8, memory_limit_bytes=100).in_memory
    assert open_source(f"folder:{class_folder}", image_size=8).in_memory


@pytest.mark.parametrize("value, expected", [("64", (64, 64)), (32, (32, 32)), ("48x64", (48, 64)), (None, None)])
def test_image_size_parses(value, expected):
    assert parse_image_size(value) == expected


@pytest.mark.parametrize("spec", ["nope", "folder:", "tfds:", "csv:/tmp/x"])
def test_unknown_specs_are_refused(spec):
    with pytest.raises(ValueError, match="Unknown dataset"):
        check_spec(spec)
    with pytest.raises(ValueError):
        parse_image_size("big")


def test_builtins_resize_to_a_requested_size():
    source = open_source("mnist_5k", image_size=32, channels=3)
    assert source.images.shape == (5000, 32, 32, 3) and source.info.num_classes == 10
    assert open_source("mnist_5k").images.shape == (5000, 28, 28, 1)  # untouched by default


def test_tfds_finds_the_image_and_label_features(monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(data, "_can_reach", lambda *args, **kwargs: True)  # mock_data stands in for the download
    with tfds.testing.mock_data(num_examples=12):
        source = open_source("tfds:mnist", image_size=32, channels=3)
        flowers = open_source("tfds:oxford_flowers102:test", image_size=16)
    assert source.images.shape == (12, 32, 32, 3) and source.info.num_classes == 10
    assert source.labels.min() >= 0 and source.labels.max() < 10
    assert flowers.images.shape == (12, 16, 16, 3) and flowers.info.num_classes == 102


def test_tfds_offline_and_unknown_names_fail_fast(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "_can_reach", lambda *args, **kwargs: False)
    with pytest.raises(data.DatasetUnavailableError, match="tfds has not prepared it.*Offline options"):
        open_source("tfds:mnist", data_dir=str(tmp_path))
    with pytest.raises(DatasetError, match="No TFDS dataset 'no_such_dataset_xyz'"):
        open_source("tfds:no_such_dataset_xyz", data_dir=str(tmp_path))


def test_a_kind_of_data_is_one_entry_in_the_spec_table(monkeypatch):
    from gan_tf.data import specs
    from gan_tf.data.source import DataSource, SpecKind

    opened = []

    def open_constant(spec, options):
        opened.append((spec, options.image_size, options.channels))
        images = np.full((4, 2, 2, 1), int(spec.partition(":")[2]), np.uint8)
        return DataSource(spec=spec, info=DatasetInfo((2, 2, 1), 0, ()), num_examples=4, in_memory=True,
                          summary="constant", images=images, labels=np.zeros(4, np.int32))

    constant = SpecKind("constant images: constant:VALUE", lambda spec: str(spec).startswith("constant:"), open_constant)
    monkeypatch.setattr(specs, "SPEC_KINDS", specs.SPEC_KINDS + (constant,))
    source = open_source("constant:7", image_size="2x2", channels=1)
    assert opened == [("constant:7", (2, 2), 1)]
    batch, _ = next(iter(source.dataset(2, value_range=(0.0, 255.0), seed=0)))
    assert np.all(batch.numpy() == 7.0)
    with pytest.raises(ValueError, match="Unknown dataset 'nope'.*constant images: constant:VALUE"):
        check_spec("nope")


def test_a_subset_is_a_seeded_draw_of_the_images_with_their_labels():
    full = open_source("mnist_5k")
    subset = full.subset(300, seed=0)
    assert subset.num_examples == len(subset.images) == len(subset.labels) == 300
    assert "a seeded draw of 300 of its 5,000 images" in subset.summary
    np.testing.assert_array_equal(subset.images, full.subset(300, seed=0).images)  # same seed, same draw
    assert not np.array_equal(subset.images, full.subset(300, seed=1).images)
    rows = {image.tobytes(): label for image, label in zip(full.images, full.labels)}
    assert all(rows[image.tobytes()] == label for image, label in zip(subset.images, subset.labels))
    assert subset.content_key != full.content_key  # caches keyed by content tell them apart
    assert full.subset(10_000) is full
    with pytest.raises(ValueError, match="max_examples must be at least 1"):
        full.subset(0)
    with pytest.raises(ValueError, match="max_examples takes image data; fashion_mnist_captions"):
        open_source("fashion_mnist_captions").subset(100)
